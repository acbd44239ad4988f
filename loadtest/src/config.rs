//! What to run: the command line (clap) and the scenario file (TOML).
//!
//! Each scenario's parameters are one struct that is both a clap `Args` and
//! a serde `Deserialize`, with clap's defaults as the only source of
//! defaults, so a flag and a file key can never disagree on a name or a
//! default. The options every scenario shares (target, threads, duration,
//! registration mode...) come from the command line first, then the file,
//! then the built-in default.

use std::path::PathBuf;

use clap::{Args, FromArgMatches, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::target::Target;

/// Upper bounds on every count and time, so a typo cannot turn a load test
/// into an unbounded one.
pub mod caps {
    /// Longest measured phase, seconds.
    pub const DURATION_SECS: f64 = 3600.0;
    /// Most connections (and so long-polling users) at once.
    pub const CONNECTIONS: usize = 50_000;
    /// Most users a scenario creates.
    pub const USERS: usize = 50_000;
    /// Most rooms a scenario creates.
    pub const ROOMS: usize = 10_000;
    /// Most accounts the register scenario creates.
    pub const ACCOUNTS: u64 = 1_000_000;
    /// Most messages a scenario sends.
    pub const MESSAGES: u64 = 10_000_000;
    /// Most worker threads.
    pub const THREADS: usize = 256;
}

#[derive(Parser, Debug)]
#[command(
    name = "tessera-loadtest",
    version,
    about = "Load generator for any Matrix homeserver on this machine, speaking only the Client-Server API"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// GET /_matrix/client/versions flat out: the HTTP ceiling.
    Versions(VersionsArgs),
    /// Register accounts, at a fixed rate or flat out.
    Register(RegisterArgs),
    /// Users in rooms send messages while every member long-polls /sync:
    /// send latency and send→sync delivery latency.
    Messaging(MessagingArgs),
    /// Initial /sync of a user in many rooms, cold then warm.
    InitialSync(InitialSyncArgs),
    /// One message to a room with many members: time until every member's
    /// /sync has it.
    Fanout(FanoutArgs),
    /// Run the scenario described by a TOML file (see the crate docs).
    Run {
        /// The scenario file.
        file: PathBuf,
    },
}

/// How users are created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationMode {
    /// `/_matrix/client/v3/register` with `m.login.dummy` (open registration).
    #[default]
    Dummy,
    /// `/_synapse/admin/v1/register` with the registration shared secret.
    Admin,
}

/// Options every scenario shares. All optional here, so that the command
/// line can override a scenario file key by key.
#[derive(Args, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonArgs {
    /// Base URL of the homeserver (loopback only).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Worker threads, one io_uring runtime each [default: CPUs this process may use].
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Pin worker thread i to the i-th allowed CPU (leave off when the server shares the machine).
    #[arg(long, global = true)]
    #[serde(default)]
    pub pin: bool,
    /// Length of the measured phase in seconds [default: 10].
    #[arg(long, global = true)]
    pub duration: Option<f64>,
    /// Write the report as JSON to this file.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// How to create users [default: dummy].
    #[arg(long, global = true, value_enum)]
    pub registration: Option<RegistrationMode>,
    /// Registration shared secret, for --registration admin.
    #[arg(long, global = true)]
    pub shared_secret: Option<String>,
    /// Per-request time-out in seconds [default: 60].
    #[arg(long, global = true)]
    pub timeout: Option<f64>,
    /// Concurrent requests while setting up users and rooms [default: 16].
    #[arg(long, global = true)]
    pub setup_concurrency: Option<usize>,
    /// PID of a server process to measure (CPU of it and its descendants,
    /// its resident memory); repeat for several (e.g. PostgreSQL's postmaster).
    #[arg(long = "server-pid", global = true)]
    #[serde(default)]
    pub server_pid: Vec<u32>,
}

/// [`CommonArgs`] with every default filled in.
#[derive(Clone, Debug, Serialize)]
pub struct Common {
    pub url: String,
    pub threads: usize,
    pub pin: bool,
    pub duration: f64,
    #[serde(skip)]
    pub json: Option<PathBuf>,
    pub registration: RegistrationMode,
    #[serde(skip)]
    pub shared_secret: Option<String>,
    pub timeout: f64,
    pub setup_concurrency: usize,
    pub server_pids: Vec<u32>,
}

impl CommonArgs {
    /// Command-line values win over the file's.
    fn or(self, file: CommonArgs) -> CommonArgs {
        CommonArgs {
            url: self.url.or(file.url),
            threads: self.threads.or(file.threads),
            pin: self.pin || file.pin,
            duration: self.duration.or(file.duration),
            json: self.json.or(file.json),
            registration: self.registration.or(file.registration),
            shared_secret: self.shared_secret.or(file.shared_secret),
            timeout: self.timeout.or(file.timeout),
            setup_concurrency: self.setup_concurrency.or(file.setup_concurrency),
            server_pid: if self.server_pid.is_empty() { file.server_pid } else { self.server_pid },
        }
    }

    fn resolve(self) -> Result<Common, String> {
        let c = Common {
            url: self.url.unwrap_or_else(|| "http://127.0.0.1:8008".into()),
            threads: self.threads.unwrap_or_else(|| tessera_net::shard::allowed_cpus().len().max(1)),
            pin: self.pin,
            duration: self.duration.unwrap_or(10.0),
            json: self.json,
            registration: self.registration.unwrap_or_default(),
            shared_secret: self.shared_secret,
            timeout: self.timeout.unwrap_or(60.0),
            setup_concurrency: self.setup_concurrency.unwrap_or(16),
            server_pids: self.server_pid,
        };
        check_range("threads", c.threads as f64, 1.0, caps::THREADS as f64)?;
        check_range("duration", c.duration, 0.1, caps::DURATION_SECS)?;
        check_range("timeout", c.timeout, 0.1, caps::DURATION_SECS)?;
        check_range("setup-concurrency", c.setup_concurrency as f64, 1.0, 1024.0)?;
        if c.registration == RegistrationMode::Admin && c.shared_secret.is_none() {
            return Err("--registration admin needs --shared-secret (or shared_secret in the file)".into());
        }
        Ok(c)
    }
}

fn check_range(name: &str, v: f64, min: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("{name} = {v} is out of range: allowed {min}..={max}"))
    }
}

/// Clap's defaults for an `Args` struct, so that serde's defaults are the
/// same values.
fn clap_defaults<T: Args + FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults").no_binary_name(true));
    let matches = cmd.try_get_matches_from(std::iter::empty::<String>()).expect("every parameter has a default");
    T::from_arg_matches(&matches).expect("defaults parse")
}

macro_rules! clap_default {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                clap_defaults()
            }
        }
    )*};
}

clap_default!(VersionsArgs, RegisterArgs, MessagingArgs, InitialSyncArgs, FanoutArgs);

#[derive(Args, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VersionsArgs {
    /// Keep-alive connections, spread over the worker threads.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterArgs {
    /// Target accounts per second; flat out when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Stop after this many accounts even if time remains.
    #[arg(long, default_value_t = 100_000)]
    pub max_accounts: u64,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MessagingArgs {
    /// Users; user i is a member of room i mod rooms, and every user long-polls /sync.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Rooms.
    #[arg(long, default_value_t = 5)]
    pub rooms: usize,
    /// Concurrent senders (users 0..senders), each sending one message at a time.
    #[arg(long, default_value_t = 5)]
    pub senders: usize,
    /// Target messages per second over all senders; flat out when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop sending after this many messages even if time remains.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_messages: u64,
    /// Seconds to wait after the last send for the syncs to deliver it.
    #[arg(long, default_value_t = 10.0)]
    pub grace: f64,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InitialSyncArgs {
    /// Rooms the user is in.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Messages sent into each room before measuring.
    #[arg(long, default_value_t = 5)]
    pub messages_per_room: usize,
    /// Warm initial syncs after the cold one.
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
}

#[derive(Args, Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FanoutArgs {
    /// Members of the room, each long-polling /sync on its own connection.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Messages sent, one at a time, each waited for at every member.
    #[arg(long, default_value_t = 5)]
    pub messages: u64,
    /// Seconds to wait for one message to reach every member.
    #[arg(long, default_value_t = 60.0)]
    pub grace: f64,
}

/// One scenario with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    Versions(VersionsArgs),
    Register(RegisterArgs),
    Messaging(MessagingArgs),
    InitialSync(InitialSyncArgs),
    Fanout(FanoutArgs),
}

impl Scenario {
    /// The scenario's name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Versions(_) => "versions",
            Self::Register(_) => "register",
            Self::Messaging(_) => "messaging",
            Self::InitialSync(_) => "initial-sync",
            Self::Fanout(_) => "fanout",
        }
    }

    /// The parameters as JSON, for the report.
    pub fn params(&self) -> serde_json::Value {
        let v = match self {
            Self::Versions(a) => serde_json::to_value(a),
            Self::Register(a) => serde_json::to_value(a),
            Self::Messaging(a) => serde_json::to_value(a),
            Self::InitialSync(a) => serde_json::to_value(a),
            Self::Fanout(a) => serde_json::to_value(a),
        };
        v.expect("parameters serialise")
    }

    /// Checks every parameter against its cap.
    fn validate(&self) -> Result<(), String> {
        let n = |name: &str, v: usize, min: usize, max: usize| check_range(name, v as f64, min as f64, max as f64);
        let rate = |r: Option<f64>| r.map_or(Ok(()), |r| check_range("rate", r, 0.001, 1e7));
        match self {
            Self::Versions(a) => n("connections", a.connections, 1, caps::CONNECTIONS),
            Self::Register(a) => {
                rate(a.rate)?;
                n("concurrency", a.concurrency, 1, caps::CONNECTIONS)?;
                check_range("max-accounts", a.max_accounts as f64, 1.0, caps::ACCOUNTS as f64)
            }
            Self::Messaging(a) => {
                rate(a.rate)?;
                n("users", a.users, 1, caps::USERS)?;
                n("rooms", a.rooms, 1, caps::ROOMS.min(a.users))?;
                n("senders", a.senders, 1, a.users)?;
                check_range("max-messages", a.max_messages as f64, 1.0, caps::MESSAGES as f64)?;
                check_range("grace", a.grace, 0.0, caps::DURATION_SECS)
            }
            Self::InitialSync(a) => {
                n("rooms", a.rooms, 1, caps::ROOMS)?;
                n("messages-per-room", a.messages_per_room, 0, 10_000)?;
                n("repeats", a.repeats, 0, 100_000)
            }
            Self::Fanout(a) => {
                n("members", a.members, 1, caps::USERS)?;
                check_range("messages", a.messages as f64, 1.0, 100_000.0)?;
                check_range("grace", a.grace, 0.1, caps::DURATION_SECS)
            }
        }
    }
}

/// The scenario file: the shared options as top-level keys, and exactly one
/// table named after the scenario to run:
///
/// ```toml
/// url = "http://127.0.0.1:8491"
/// duration = 20
/// [messaging]
/// users = 100
/// rooms = 10
/// rate = 200
/// ```
pub fn parse_scenario_file(text: &str) -> Result<(CommonArgs, Scenario), String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for name in ["versions", "register", "messaging", "initial-sync", "fanout"] {
        if let Some(value) = table.remove(name) {
            let err = |e: toml::de::Error| format!("[{name}]: {e}");
            let scenario = match name {
                "versions" => Scenario::Versions(value.try_into().map_err(err)?),
                "register" => Scenario::Register(value.try_into().map_err(err)?),
                "messaging" => Scenario::Messaging(value.try_into().map_err(err)?),
                "initial-sync" => Scenario::InitialSync(value.try_into().map_err(err)?),
                _ => Scenario::Fanout(value.try_into().map_err(err)?),
            };
            found.push(scenario);
        }
    }
    let common: CommonArgs = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| e.to_string())?;
    match found.len() {
        1 => Ok((common, found.pop().expect("one"))),
        0 => Err("no scenario table: add one of [versions], [register], [messaging], [initial-sync], [fanout]".into()),
        _ => Err("more than one scenario table: a file describes one run".into()),
    }
}

/// Everything a run needs, validated.
#[derive(Debug)]
pub struct Plan {
    pub common: Common,
    pub scenario: Scenario,
}

impl Cli {
    /// Merges the command line with the scenario file (if any) and checks
    /// every value against its cap.
    pub fn plan(self) -> Result<Plan, String> {
        let (common, scenario) = match self.command {
            Command::Versions(a) => (self.common, Scenario::Versions(a)),
            Command::Register(a) => (self.common, Scenario::Register(a)),
            Command::Messaging(a) => (self.common, Scenario::Messaging(a)),
            Command::InitialSync(a) => (self.common, Scenario::InitialSync(a)),
            Command::Fanout(a) => (self.common, Scenario::Fanout(a)),
            Command::Run { file } => {
                let text =
                    std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                let (from_file, scenario) =
                    parse_scenario_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
                (self.common.or(from_file), scenario)
            }
        };
        scenario.validate()?;
        let common = common.resolve()?;
        Target::parse(&common.url).map_err(|e| e.to_string())?;
        Ok(Plan { common, scenario })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        Cli::try_parse_from(std::iter::once("tessera-loadtest").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .plan()
    }

    #[test]
    fn scenario_file_with_shared_options_and_one_scenario() {
        let (common, scenario) = parse_scenario_file(
            r#"
            url = "http://127.0.0.1:8491"
            duration = 20.5
            registration = "admin"
            shared_secret = "s"
            [messaging]
            users = 100
            rooms = 10
            rate = 200.0
            "#,
        )
        .unwrap();
        assert_eq!(common.url.as_deref(), Some("http://127.0.0.1:8491"));
        assert_eq!(common.duration, Some(20.5));
        assert_eq!(common.registration, Some(RegistrationMode::Admin));
        let Scenario::Messaging(m) = scenario else { panic!("{scenario:?}") };
        // Keys not given take the command line's defaults.
        assert_eq!(m, MessagingArgs { users: 100, rooms: 10, rate: Some(200.0), ..MessagingArgs::default() });
        assert_eq!((m.senders, m.max_messages, m.grace), (5, 1_000_000, 10.0));
    }

    #[test]
    fn the_example_scenario_file_parses() {
        let (common, scenario) = parse_scenario_file(include_str!("../scenarios/messaging-synapse.toml")).unwrap();
        assert_eq!(common.registration, Some(RegistrationMode::Admin));
        assert!(matches!(scenario, Scenario::Messaging(MessagingArgs { users: 100, rooms: 10, .. })));
    }

    #[test]
    fn scenario_file_errors_name_the_problem() {
        let err = parse_scenario_file("[messaging]\nuserz = 3").unwrap_err();
        assert!(err.contains("[messaging]") && err.contains("userz"), "{err}");
        let err = parse_scenario_file("urll = 'x'\n[versions]").unwrap_err();
        assert!(err.contains("urll"), "{err}");
        assert!(parse_scenario_file("url = 'x'").unwrap_err().contains("no scenario"));
        assert!(parse_scenario_file("[versions]\n[fanout]").unwrap_err().contains("more than one"));
        let (_, s) = parse_scenario_file("[initial-sync]\nrooms = 3").unwrap();
        assert_eq!(s, Scenario::InitialSync(InitialSyncArgs { rooms: 3, ..Default::default() }));
    }

    #[test]
    fn command_line_overrides_the_file() {
        let path = std::env::temp_dir().join(format!("lt-config-test-{}.toml", std::process::id()));
        std::fs::write(&path, "url = 'http://127.0.0.1:1'\nduration = 3\nthreads = 1\n[versions]\nconnections = 7\n")
            .unwrap();
        let p = plan(&["--duration", "5", "run", path.to_str().unwrap()]).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((p.common.url.as_str(), p.common.duration, p.common.threads), ("http://127.0.0.1:1", 5.0, 1));
        assert_eq!(p.scenario, Scenario::Versions(VersionsArgs { connections: 7 }));
    }

    #[test]
    fn command_line_scenarios_and_caps() {
        let p =
            plan(&["messaging", "--users", "10", "--rooms", "2", "--senders", "3", "--url", "http://[::1]:9"]).unwrap();
        assert_eq!(p.common.url, "http://[::1]:9");
        assert_eq!(p.common.timeout, 60.0);
        assert!(matches!(p.scenario, Scenario::Messaging(MessagingArgs { users: 10, rooms: 2, senders: 3, .. })));
        assert!(plan(&["messaging", "--users", "2", "--senders", "3", "--rooms", "1"])
            .unwrap_err()
            .contains("senders"));
        assert!(plan(&["versions", "--connections", "1000000"]).unwrap_err().contains("connections"));
        assert!(plan(&["versions", "--duration", "100000"]).unwrap_err().contains("duration"));
        assert!(plan(&["fanout", "--registration", "admin"]).unwrap_err().contains("shared-secret"));
        assert!(plan(&["initial-sync", "--rooms", "0"]).is_err());
        assert!(plan(&["versions", "--url", "http://192.168.1.1:8008"]).unwrap_err().contains("not loopback"));
    }
}
