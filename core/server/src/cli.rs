//! The command line. Operators' scripts depend on these names and flags:
//! change them only compatibly.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Tessera, a thread-per-core Matrix homeserver.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The config file (for `serve` without a subcommand).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Write a commented config file, an ed25519 signing key and a
    /// self-signed TLS certificate for the federation listener.
    GenerateConfig {
        /// The server name: the domain in user IDs.
        #[arg(long, value_name = "NAME")]
        server_name: String,
        /// Where data goes, as written into the config (default: `data`
        /// next to the config file).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Port of the Client-Server API listener.
        #[arg(long, value_name = "N", default_value_t = 8008)]
        client_port: u16,
        /// Port of the federation listener.
        #[arg(long, value_name = "N", default_value_t = 8448)]
        federation_port: u16,
    },
    /// Load and validate the config (including keys and certificates), then
    /// exit: 0 if it is good.
    CheckConfig,
}
