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
    commit_heap_on_demand();
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

/// mimalloc's switch for committing each arena it reserves whole.
const EAGER_COMMIT: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

/// mimalloc commits each arena whole when the kernel overcommits (its
/// default), so a process whose heap is a few MiB holds several more:
/// 16.4 MiB resident at idle against 12.7 with commit on demand, and
/// 3.5 MiB less at the peak of a messaging load (docs/benchmarks.md,
/// "Memory"). mimalloc reads its options from the environment once, before
/// `main`, and its first arena is reserved by then, so setting the option
/// here would come too late: the process runs itself again with the
/// variable set (same PID, arguments and descriptors). An operator's own
/// setting of the variable is kept.
fn commit_heap_on_demand() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(EAGER_COMMIT).is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    // By path, so the process keeps its name (`comm`, what `top` and
    // `pgrep` show); /proc/self/exe if the file was replaced meanwhile.
    let exe = std::env::current_exe().ok().filter(|p| p.exists()).unwrap_or_else(|| "/proc/self/exe".into());
    let error = std::process::Command::new(exe).arg0(argv0).args(args).env(EAGER_COMMIT, "0").exec();
    // Not re-run (no /proc): go on with mimalloc's defaults.
    eprintln!("tessera: cannot re-run with {EAGER_COMMIT}=0 ({error}); continuing");
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
