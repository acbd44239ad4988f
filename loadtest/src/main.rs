//! The `tessera-loadtest` binary: parse the command line, run, print the
//! summary and write the JSON report.

use std::process::ExitCode;

use clap::Parser;
use tessera_loadtest::config::Cli;
use tessera_loadtest::scenarios;

fn main() -> ExitCode {
    let plan = match Cli::parse().plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let json_path = plan.common.json.clone();
    let report = match scenarios::run(plan) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.human());
    if let Some(path) = json_path {
        let json = serde_json::to_vec_pretty(&report).expect("report serialises");
        if let Err(e) = std::fs::write(&path, json) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
