//! The configuration file: its schema, defaults, loading and validation.
//!
//! A config is TOML. Every key can be overridden from the environment (see
//! [`env`]). Unknown keys are errors, and every error names the key at
//! fault, so a typo stops start-up instead of being silently ignored.
//! Relative paths are relative to the config file's directory.

pub mod env;
pub mod template;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use tessera_proto::identifiers::{KeyId, ServerName};
use tessera_proto::keys::{OldVerifyKey, PublicKey};

use crate::rate_limit::Limit;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The domain in user IDs and room aliases (`@alice:<server_name>`).
    pub server_name: String,
    /// Where the data lives: the embedded database, keys, media.
    pub data_dir: PathBuf,
    /// The server's ed25519 signing keys, in Synapse's key file format.
    /// Every key in the file signs; the first is the one events are signed
    /// with.
    pub signing_key_path: PathBuf,
    /// Keys this server used to sign with, still published at
    /// `/_matrix/key/v2/server` so that what they signed stays verifiable.
    #[serde(default)]
    pub old_verify_keys: Vec<OldVerifyKeySection>,
    /// Shards, virtual shards, pinning.
    #[serde(default)]
    pub server: ServerSection,
    /// The HTTP listeners.
    pub listeners: Listeners,
    /// Request limits shared by all listeners.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The storage backend.
    #[serde(default)]
    pub storage: StorageSection,
    /// Account registration.
    pub registration: RegistrationSection,
    /// `/.well-known/matrix/*` discovery documents.
    #[serde(default)]
    pub well_known: WellKnownSection,
    /// Logs.
    #[serde(default)]
    pub logging: LoggingSection,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Requests to other servers.
    #[serde(default)]
    pub federation: FederationSection,
    /// Single sign-on through a CAS server.
    #[serde(default)]
    pub cas: CasSection,
    /// Rate limits on the Client-Server API.
    #[serde(default)]
    pub rate_limits: RateLimitsSection,
    /// Login sessions.
    #[serde(default)]
    pub sessions: SessionsSection,
}

/// `[[old_verify_keys]]`: a retired signing key (key rotation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OldVerifyKeySection {
    /// E.g. `ed25519:a_Old1`.
    pub key_id: String,
    /// The public key, unpadded base64.
    pub key: String,
    /// When it stopped being used, POSIX milliseconds.
    pub expired_ts: u64,
}

impl OldVerifyKeySection {
    /// The key as the key response publishes it.
    pub fn to_proto(&self) -> Result<OldVerifyKey, String> {
        let key_id = KeyId::parse(&self.key_id).map_err(|e| format!("key_id: {e}"))?;
        let key = PublicKey::from_base64(&self.key).map_err(|e| format!("key: {e}"))?;
        Ok(OldVerifyKey { key_id, key, expired_ts: self.expired_ts })
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Shards (one thread per core); 0 means every core this process may use.
    pub cores: usize,
    /// Virtual shards that rooms are spread over. Fixed for the life of the
    /// data directory, so it must be at least the most cores you will ever
    /// run on.
    pub vshards: usize,
    /// Pin each shard's thread to its own core.
    pub pin_threads: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self { cores: 0, vshards: 256, pin_threads: true }
    }
}

/// `[listeners]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// The Client-Server API listener, usually behind a reverse proxy.
    pub client: ListenerSection,
    /// The Server-Server API listener; TLS by default.
    pub federation: ListenerSection,
}

/// `[listeners.client]`, `[listeners.federation]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    /// Whether to listen at all.
    #[serde(default = "yes")]
    pub enable: bool,
    /// Addresses to listen on, `ip:port`.
    pub bind: Vec<SocketAddr>,
    /// PEM certificate chain; with `tls_private_key`, serve TLS.
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key.
    pub tls_private_key: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` header is believed.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Also serve the Server-Server API here: one TLS port for both APIs,
    /// as small deployments and test networks (SyTest) run. The federation
    /// listener serves it regardless.
    #[serde(default)]
    pub serve_federation: bool,
}

fn yes() -> bool {
    true
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Largest JSON request body, bytes.
    pub max_body_bytes: usize,
    /// Open connections per listener, for the whole server.
    pub max_connections: usize,
    /// Seconds a keep-alive connection may sit idle.
    pub idle_timeout_secs: u64,
    /// Seconds a request may take to arrive, head and body.
    pub request_timeout_secs: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            max_connections: 10_000,
            idle_timeout_secs: 75,
            request_timeout_secs: 30,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// `embedded` (the default) or `postgres`.
    pub backend: Backend,
    /// `postgresql://…` URL, for the postgres backend.
    pub postgres_url: Option<String>,
    /// Reader connections per shard for the postgres backend (each shard
    /// also has one writer connection).
    pub postgres_readers: usize,
    /// PEM files of CA certificates trusted, besides the public roots, for
    /// TLS to PostgreSQL (`sslmode=require` in `postgres_url`; the
    /// certificate is always verified, for the URL's host).
    pub postgres_ca_files: Vec<PathBuf>,
    /// PEM certificate (chain) presented to PostgreSQL over TLS, for
    /// `cert` authentication; with `postgres_client_key`.
    pub postgres_client_cert: Option<PathBuf>,
    /// PEM private key of `postgres_client_cert`.
    pub postgres_client_key: Option<PathBuf>,
    /// Block cache of the embedded database, MiB (shared by all shards).
    pub cache_mib: u64,
    /// Written data the embedded database may hold in memory, all
    /// keyspaces together, before the largest buffer is flushed, MiB.
    pub write_buffer_mib: u64,
    /// Acknowledge a write only once it is on disk. `false` loses the last
    /// writes on a crash: for benchmarks only.
    pub sync_writes: bool,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            postgres_url: None,
            postgres_readers: 2,
            postgres_ca_files: Vec::new(),
            postgres_client_cert: None,
            postgres_client_key: None,
            cache_mib: 64,
            write_buffer_mib: 4,
            sync_writes: true,
        }
    }
}

/// Storage backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// fjall, inside `data_dir`.
    Embedded,
    /// PostgreSQL.
    Postgres,
}

/// `[registration]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSection {
    /// Whether anyone may register an account over the Client-Server API.
    #[serde(default)]
    pub enable: bool,
    /// Whether guest accounts may be registered (`kind=guest`).
    #[serde(default)]
    pub allow_guests: bool,
    /// Secret for `/_synapse/admin/v1/register`, which registers accounts
    /// even when registration is closed (operator tools use it).
    pub shared_secret: String,
    /// Whether registering needs a registration token (made with the admin
    /// API, `/_synapse/admin/v1/registration_tokens`).
    #[serde(default)]
    pub require_token: bool,
}

/// `[well_known]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WellKnownSection {
    /// Base URL clients should use, served at `/.well-known/matrix/client`.
    pub client: Option<String>,
    /// `host[:port]` other servers should use, served at
    /// `/.well-known/matrix/server` (delegation).
    pub server: Option<String>,
}

/// `[logging]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,tessera_net=debug`. `RUST_LOG`
    /// wins when set.
    pub level: String,
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self { format: LogFormat::Pretty, level: "info".into() }
    }
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// Serve Prometheus metrics at `/metrics` on the client listener.
    pub enable: bool,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self { enable: true }
    }
}

/// `[federation]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationSection {
    /// PEM files of CA certificates trusted for outbound requests besides
    /// the public (Mozilla) roots: a private federation's own CA.
    pub trusted_ca_files: Vec<PathBuf>,
}

/// `[cas]`: single sign-on through a CAS server (Central Authentication
/// Service, protocol 2.0/3.0), as Synapse's `cas_config` offers it. Off
/// unless `server_url` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasSection {
    /// The CAS server's base URL, e.g. `https://cas.example.com/cas`: users
    /// are sent to `<server_url>/login`, tickets checked at
    /// `<server_url>/proxyValidate`.
    pub server_url: Option<String>,
    /// The base URL clients reach this server at, which CAS sends users
    /// back to; `[well_known] client` when unset.
    pub service_url: Option<String>,
    /// The CAS attribute that gives a new account its display name (the
    /// CAS user name otherwise).
    pub displayname_attribute: Option<String>,
    /// Attributes a CAS user must have, with these values, to sign in.
    pub required_attributes: std::collections::BTreeMap<String, String>,
}

/// `[sessions]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsSection {
    /// How long an access token lives when the client asked for a refresh
    /// token (Synapse's `refreshable_access_token_lifetime`, 5 minutes).
    /// Tokens of clients that did not ask never expire.
    pub refreshable_lifetime_secs: u64,
}

impl Default for SessionsSection {
    fn default() -> Self {
        Self { refreshable_lifetime_secs: 300 }
    }
}

/// `[rate_limits]`: token buckets per user, address or account
/// (`crate::rate_limit`); the defaults are Synapse's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsSection {
    /// Off for tests and benchmarks only.
    pub enable: bool,
    /// Sending events, per user (Synapse's `rc_message`).
    pub message: Limit,
    /// Registering, per client address (`rc_registration`).
    pub registration: Limit,
    /// Logging in, per client address (`rc_login.address`).
    pub login: Limit,
    /// Failed logins, per account (`rc_login.failed_attempts`).
    pub login_failure: Limit,
    /// Joining rooms, per user (`rc_joins.local`).
    pub join: Limit,
    /// Creating rooms, per user (`rc_room_creation`).
    pub room_creation: Limit,
    /// Checking registration tokens, per client address
    /// (`rc_registration_token_validity`).
    pub token_validity: Limit,
}

impl Default for RateLimitsSection {
    fn default() -> Self {
        let limit = |per_second, burst| Limit { per_second, burst };
        Self {
            enable: true,
            message: limit(0.2, 10.0),
            registration: limit(0.17, 3.0),
            login: limit(0.003, 5.0),
            login_failure: limit(0.17, 3.0),
            join: limit(0.1, 10.0),
            room_creation: limit(0.016, 10.0),
            token_validity: limit(0.1, 5.0),
        }
    }
}

impl RateLimitsSection {
    /// Every limit the same (tests).
    #[cfg(test)]
    pub fn with_all(limit: Limit) -> Self {
        Self {
            enable: true,
            message: limit,
            registration: limit,
            login: limit,
            login_failure: limit,
            join: limit,
            room_creation: limit,
            token_validity: limit,
        }
    }
}

/// A configuration error, naming the key (or file) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not TOML.
    #[error("config {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key has a bad value (or is unknown, or missing).
    #[error("config key `{key}`: {message}")]
    Key {
        /// The key's dotted path.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    fn key(key: &str, message: impl Into<String>) -> Self {
        Self::Key { key: key.into(), message: message.into() }
    }
}

impl Config {
    /// Reads, overrides from the environment, and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax { path: path.into(), message: e.to_string() })?;
        env::apply_overrides(&mut table, std::env::vars())?;
        let mut config = Self::from_table(table)?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        config.validate()?;
        Ok(config)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { "(top level)".to_owned() } else { key };
            ConfigError::Key { key, message: e.into_inner().to_string().trim().to_owned() }
        })
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.data_dir);
        resolve(&mut self.signing_key_path);
        for l in [&mut self.listeners.client, &mut self.listeners.federation] {
            l.tls_certificate.as_mut().map(resolve);
            l.tls_private_key.as_mut().map(resolve);
        }
        self.federation.trusted_ca_files.iter_mut().for_each(resolve);
        self.storage.postgres_ca_files.iter_mut().for_each(resolve);
        self.storage.postgres_client_cert.as_mut().map(resolve);
        self.storage.postgres_client_key.as_mut().map(resolve);
    }

    fn validate(&self) -> Result<(), ConfigError> {
        ServerName::parse(&self.server_name).map_err(|e| ConfigError::key("server_name", e.to_string()))?;
        for (i, old) in self.old_verify_keys.iter().enumerate() {
            old.to_proto().map_err(|e| ConfigError::key(&format!("old_verify_keys[{i}]"), e))?;
        }
        let s = &self.server;
        if !(1..=65_536).contains(&s.vshards) {
            return Err(ConfigError::key("server.vshards", "must be between 1 and 65536"));
        }
        if s.cores > s.vshards {
            return Err(ConfigError::key("server.cores", format!("must not exceed server.vshards ({})", s.vshards)));
        }
        for (name, l) in [("client", &self.listeners.client), ("federation", &self.listeners.federation)] {
            if l.enable && l.bind.is_empty() {
                return Err(ConfigError::key(&format!("listeners.{name}.bind"), "needs at least one address"));
            }
            if l.tls_certificate.is_some() != l.tls_private_key.is_some() {
                let key = format!("listeners.{name}.tls_private_key");
                return Err(ConfigError::key(&key, "tls_certificate and tls_private_key go together"));
            }
        }
        if !self.listeners.client.enable && !self.listeners.federation.enable {
            return Err(ConfigError::key("listeners", "at least one listener must be enabled"));
        }
        let l = &self.limits;
        for (key, value) in [
            ("limits.max_header_bytes", l.max_header_bytes as u64),
            ("limits.max_body_bytes", l.max_body_bytes as u64),
            ("limits.max_connections", l.max_connections as u64),
            ("limits.idle_timeout_secs", l.idle_timeout_secs),
            ("limits.request_timeout_secs", l.request_timeout_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::key(key, "must be greater than 0"));
            }
        }
        if l.max_header_bytes < 1024 {
            return Err(ConfigError::key("limits.max_header_bytes", "must be at least 1024"));
        }
        if self.storage.write_buffer_mib == 0 {
            return Err(ConfigError::key("storage.write_buffer_mib", "must be greater than 0"));
        }
        if self.storage.cache_mib == 0 {
            return Err(ConfigError::key("storage.cache_mib", "must be greater than 0"));
        }
        if self.storage.backend == Backend::Postgres {
            if self.storage.postgres_url.is_none() {
                return Err(ConfigError::key("storage.postgres_url", "required when storage.backend = \"postgres\""));
            }
            if self.storage.postgres_readers == 0 {
                return Err(ConfigError::key("storage.postgres_readers", "must be greater than 0"));
            }
            if self.storage.postgres_client_cert.is_some() != self.storage.postgres_client_key.is_some() {
                return Err(ConfigError::key(
                    "storage.postgres_client_cert",
                    "postgres_client_cert and postgres_client_key go together",
                ));
            }
        }
        // Generated secrets are long; the floor only refuses empty or
        // trivial ones. (Synapse has none; SyTest's is `reg_secret`.)
        if self.registration.shared_secret.len() < 8 {
            return Err(ConfigError::key("registration.shared_secret", "must be at least 8 characters"));
        }
        if let Some(url) = &self.well_known.client {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::key("well_known.client", "must be an http(s) URL"));
            }
        }
        let r = &self.rate_limits;
        for (name, limit) in [
            ("message", r.message),
            ("registration", r.registration),
            ("login", r.login),
            ("login_failure", r.login_failure),
            ("join", r.join),
            ("room_creation", r.room_creation),
            ("token_validity", r.token_validity),
        ] {
            if !(limit.per_second >= 0.0
                && limit.burst >= 1.0
                && limit.per_second.is_finite()
                && limit.burst.is_finite())
            {
                let key = format!("rate_limits.{name}");
                return Err(ConfigError::key(&key, "needs per_second >= 0 and burst >= 1"));
            }
        }
        if self.sessions.refreshable_lifetime_secs == 0 {
            return Err(ConfigError::key("sessions.refreshable_lifetime_secs", "must be greater than 0"));
        }
        if let Some(url) = &self.cas.server_url {
            crate::sso::cas::CasServer::parse(url).map_err(|e| ConfigError::key("cas.server_url", e))?;
            match self.cas_service_base() {
                Some(base) if base.starts_with("https://") || base.starts_with("http://") => {}
                Some(_) => return Err(ConfigError::key("cas.service_url", "must be an http(s) URL")),
                None => {
                    return Err(ConfigError::key(
                        "cas.service_url",
                        "required with cas.server_url (or set well_known.client)",
                    ))
                }
            }
        }
        Ok(())
    }

    /// The base URL single sign-on sends browsers back to (no trailing
    /// `/`): `[cas] service_url`, else `[well_known] client`.
    pub fn cas_service_base(&self) -> Option<&str> {
        let base = self.cas.service_url.as_deref().or(self.well_known.client.as_deref())?;
        Some(base.trim_end_matches('/'))
    }

    /// Shards to run: `server.cores`, or every core this process may use.
    pub fn shard_count(&self) -> usize {
        match self.server.cores {
            0 => tessera_net::shard::allowed_cpus().len().clamp(1, self.server.vshards),
            n => n,
        }
    }

    /// The transport limits for one listener on one shard.
    pub fn net_limits(&self, shards: usize) -> tessera_net::http::Limits {
        let l = &self.limits;
        tessera_net::http::Limits {
            max_header_bytes: l.max_header_bytes,
            max_body_bytes: l.max_body_bytes,
            idle_timeout: Duration::from_secs(l.idle_timeout_secs),
            request_timeout: Duration::from_secs(l.request_timeout_secs),
            max_connections: l.max_connections.div_ceil(shards),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> toml::Table {
        template::render(&template::Params {
            server_name: "example.org".into(),
            data_dir: "data".into(),
            client_port: 8008,
            federation_port: 8448,
            shared_secret: "0123456789abcdef0123".into(),
        })
        .parse()
        .unwrap()
    }

    fn check(table: toml::Table) -> Result<Config, ConfigError> {
        let config = Config::from_table(table)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn generated_template_is_valid() {
        let c = check(minimal()).unwrap();
        assert_eq!(c.server.vshards, 256);
        assert!(!c.registration.enable);
        assert_eq!(c.listeners.client.bind, ["127.0.0.1:8008".parse().unwrap()]);
    }

    #[test]
    fn unknown_key_is_named() {
        let mut t = minimal();
        t["server"].as_table_mut().unwrap().insert("corse".into(), 2.into());
        let err = check(t).unwrap_err().to_string();
        assert!(err.contains("corse"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_nested_key() {
        let mut t = minimal();
        t["limits"].as_table_mut().unwrap().insert("max_body_bytes".into(), "lots".into());
        let err = check(t).unwrap_err().to_string();
        assert!(err.starts_with("config key `limits.max_body_bytes`"), "{err}");
    }

    #[test]
    fn bad_server_names_are_refused() {
        for bad in ["", "exa mple.org", "example.org:123456", "[::1", "host:"] {
            let mut t = minimal();
            t.insert("server_name".into(), bad.into());
            assert!(check(t).is_err(), "{bad:?}");
        }
        for good in ["example.org", "example.org:8448", "1.2.3.4", "[::1]:8448", "localhost"] {
            let mut t = minimal();
            t.insert("server_name".into(), good.into());
            assert!(check(t).is_ok(), "{good}");
        }
    }

    #[test]
    fn old_verify_key_with_bad_public_key_is_named() {
        let mut t = minimal();
        let old: toml::Table = "key_id = \"ed25519:old\"\nkey = \"not base64!\"\nexpired_ts = 1".parse().unwrap();
        t.insert("old_verify_keys".into(), toml::Value::Array(vec![old.into()]));
        let err = check(t).unwrap_err().to_string();
        assert!(err.contains("old_verify_keys[0]"), "{err}");
    }

    #[test]
    fn tls_certificate_without_key_is_refused() {
        let mut t = minimal();
        let fed = t["listeners"]["federation"].as_table_mut().unwrap();
        fed.remove("tls_private_key");
        let err = check(t).unwrap_err().to_string();
        assert!(err.contains("listeners.federation.tls_private_key"), "{err}");
    }
}
