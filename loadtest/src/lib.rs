//! `tessera-loadtest`: a load generator for any Matrix homeserver, speaking
//! only the Client-Server API, so the same run measures Tessera and Synapse.
//!
//! Scenarios (`tessera-loadtest <scenario> --help` lists each one's
//! parameters): `versions` (the HTTP ceiling), `register`, `messaging`
//! (send and send→sync delivery latency), `initial-sync` and `fanout`. A
//! scenario can also come from a TOML file (`tessera-loadtest run FILE`,
//! see [`config::parse_scenario_file`]).
//!
//! - [`target`]: the base URL, and the refusal of non-loopback targets.
//! - [`http`]: the keep-alive HTTP/1.1 client on monoio.
//! - [`matrix`]: the Client-Server API calls, rate-limit handling.
//! - [`runner`]: worker threads (one io_uring runtime each), setup, pacing.
//! - [`scenarios`]: the five scenarios.
//! - [`server`]: the server's CPU and memory over a run (`--server-pid`).
//! - [`stats`]: histograms, the progress line, the report and its JSON.

pub mod config;
pub mod http;
pub mod matrix;
pub mod runner;
pub mod scenarios;
pub mod server;
pub mod stats;
pub mod target;
