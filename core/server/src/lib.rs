//! Tessera, the homeserver: configuration, the HTTP API, and the `tessera`
//! binary's commands. Transport lives in `tessera-net`, storage in
//! `tessera-storage`.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod federation;
pub mod generate;
pub mod logging;
pub mod placement;
pub mod push;
pub mod rate_limit;
pub mod request;
pub mod rooms;
pub mod serve;
pub mod sso;
pub mod state;
pub mod store;
pub mod sync;
