//! `tessera`: the homeserver binary.

use std::process::ExitCode;

use clap::Parser;
use tessera::cli::{Cli, Command};
use tessera::config::Config;
use tessera::{generate, logging, serve};

// mimalloc: small-object allocation is on every request's path, and its
// thread-local free lists suit one thread per core.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::GenerateConfig { server_name, data_dir, client_port, federation_port } => match cli.config {
            Some(config) => {
                generate::run(generate::Request { server_name, config, data_dir, client_port, federation_port })
            }
            None => Err("generate-config needs --config PATH".to_owned()),
        },
        Command::CheckConfig => load(cli.config.as_deref()).and_then(serve::prepare).map(|_| println!("config OK")),
        Command::Serve => load(cli.config.as_deref()).and_then(|config| {
            logging::init(&config.logging);
            serve::run(serve::prepare(config)?)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&std::path::Path>) -> Result<Config, String> {
    let path = path.ok_or("--config PATH is required (create one with `tessera generate-config`)")?;
    Config::load(path).map_err(|e| e.to_string())
}

/// mimalloc asks the kernel for transparent huge pages, so every region it
/// touches becomes resident 2 MiB at a time: on a server whose live heap is
/// a few MiB that doubled the resident memory (22 MiB at idle instead of
/// 11, measured in `docs/benchmarks.md`, "Memory"). The heap is small and
/// spread over few pages, so huge pages buy no measurable TLB win here.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and only
    // sets a flag on this process; a failure (old kernel) leaves THP as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
