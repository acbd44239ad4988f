//! Tessera, the homeserver: configuration, the HTTP API, and the `tessera`
//! binary's commands. Transport lives in `tessera-net`, storage in
//! `tessera-storage`.

pub mod api;
pub mod cli;
pub mod config;
pub mod generate;
pub mod logging;
pub mod serve;
pub mod state;
pub mod store;
