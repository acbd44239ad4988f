//! The commented config file that `tessera generate-config` writes.

/// What `generate-config` fills in.
pub struct Params {
    /// `server_name`.
    pub server_name: String,
    /// `data_dir`, as written (relative paths are relative to the config).
    pub data_dir: String,
    /// Port of the client listener.
    pub client_port: u16,
    /// Port of the federation listener.
    pub federation_port: u16,
    /// The generated registration shared secret.
    pub shared_secret: String,
}

/// The config file text.
pub fn render(p: &Params) -> String {
    let Params { server_name, data_dir, client_port, federation_port, shared_secret } = p;
    let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let host = server_name.rsplit_once(':').map_or(server_name.as_str(), |(h, _)| h);
    let client_url = if host == "localhost" || host == "127.0.0.1" || host == "[::1]" {
        format!("http://localhost:{client_port}")
    } else {
        format!("https://{host}")
    };
    let server_name = quoted(server_name);
    let data_dir_q = quoted(data_dir);
    let signing_key = quoted(&format!("{data_dir}/signing.key"));
    let tls_cert = quoted(&format!("{data_dir}/tls.crt"));
    let tls_key = quoted(&format!("{data_dir}/tls.key"));
    let secret = quoted(shared_secret);
    let client_url = quoted(&client_url);
    let delegated = quoted(&format!("{host}:{federation_port}"));
    format!(
        r#"# Tessera configuration.
#
# Every key can be overridden from the environment: TESSERA_ followed by the
# key's path in upper case, with __ between sections, for example
# TESSERA_REGISTRATION__ENABLE=true or TESSERA_SERVER__CORES=4.
# Relative paths are relative to this file's directory.

# The domain in your users' IDs (@alice:example.org). It cannot be changed
# once users exist.
server_name = {server_name}

# Where Tessera keeps its data (the embedded database, keys, media).
data_dir = {data_dir_q}

# The server's ed25519 signing key (Synapse's key file format, so a key can be
# carried over). Keep it secret and keep it backed up: other servers pin it.
signing_key_path = {signing_key}

[server]
# Shards: one thread per core, each pinned to its core. 0 uses every core
# this process may run on (respecting taskset and cgroup cpusets).
cores = 0
# Virtual shards that rooms are spread over, then spread over cores. Fixed for
# the life of the data directory: it must be at least the largest number of
# cores you will ever run on.
vshards = 256
# Pin each shard's thread to one core (recommended on dedicated machines).
pin_threads = true

# The Client-Server API. Put it behind your reverse proxy (see README.md):
# the proxy terminates TLS and forwards /_matrix and /_synapse/client here.
[listeners.client]
bind = ["127.0.0.1:{client_port}"]
# Proxies allowed to report the client's address in X-Forwarded-For.
trusted_proxies = ["127.0.0.1/32", "::1/128"]
# To serve TLS here directly instead, set both:
# tls_certificate = "/path/to/fullchain.pem"
# tls_private_key = "/path/to/privkey.pem"
# To serve the federation API on this port too (one port for both APIs):
# serve_federation = true

# The Server-Server (federation) API, with TLS. generate-config made a
# self-signed certificate so this starts; other servers will only trust a
# certificate from a public CA for your server name, so replace these with
# your real certificate (for example from certbot) before federating.
[listeners.federation]
enable = true
bind = ["0.0.0.0:{federation_port}"]
tls_certificate = {tls_cert}
tls_private_key = {tls_key}

# Requests to other servers are checked against the public (Mozilla) CA
# roots; a private federation adds its own CA here.
[federation]
# trusted_ca_files = ["/path/to/ca.pem"]

[limits]
# Largest request head (request line and headers), in bytes.
max_header_bytes = 16384
# Largest JSON request body, in bytes.
max_body_bytes = 1048576
# Open connections per listener for the whole server.
max_connections = 10000
# Seconds a keep-alive connection may sit idle between requests.
idle_timeout_secs = 75
# Seconds a request may take to arrive, head and body (slow clients are cut).
request_timeout_secs = 30

[storage]
# "embedded" keeps everything in data_dir with no setup. "postgres" is for
# large deployments: give it an empty database (created with
# ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C') and Tessera creates its tables.
backend = "embedded"
# postgres_url = "postgresql://tessera:secret@127.0.0.1:5432/tessera"
# On the same machine, through PostgreSQL's Unix socket (its directory as
# the host, percent-encoded; peer authentication needs no password):
# postgres_url = "postgresql://tessera@%2Fvar%2Frun%2Fpostgresql/tessera"
# Reader connections per shard (plus one writer per shard).
# postgres_readers = 2
# TLS to a remote database: add ?sslmode=require to postgres_url. The
# server's certificate is then verified for the URL's host against the
# public roots and these CA files (PEM). Without sslmode=require the
# connection is plain, as on a private network or a Unix socket.
# postgres_ca_files = ["/etc/tessera/postgres-ca.pem"]
# A client certificate for TLS connections, for `cert` authentication in
# pg_hba.conf (libpq's sslcert and sslkey; PEM, both or neither). Needs
# sslmode=require in postgres_url.
# postgres_client_cert = "/etc/tessera/postgres-client.crt"
# postgres_client_key = "/etc/tessera/postgres-client.key"
# Block cache of the embedded database in MiB, shared by all shards. More
# cache means fewer disk reads for large rooms; the rest of memory use is
# small.
cache_mib = 64
# Memory for written data of the embedded database in MiB, all of its
# keyspaces together: writes wait here before they are flushed to disk in
# the background. Larger means fewer, bigger flushes and more memory.
write_buffer_mib = 4
# Answer a write only once it is on disk. Never turn this off in production:
# a crash would lose the last acknowledged messages. (For benchmarks only.)
sync_writes = true

[registration]
# Whether anyone may create an account over the Client-Server API.
enable = false
# Whether guest accounts (no password, read-mostly; `kind=guest`) may be
# registered. Guests cannot create rooms and join only rooms whose
# m.room.guest_access is can_join.
allow_guests = false
# Secret for /_synapse/admin/v1/register, which operator tools use to create
# accounts even when registration is closed. Generated; keep it secret.
shared_secret = {secret}
# With registration open, whether registering needs a registration token
# (`m.login.registration_token`). Server admins make tokens with the admin
# API: POST /_synapse/admin/v1/registration_tokens/new.
require_token = false

[well_known]
# Served at /.well-known/matrix/client: the base URL clients should use.
client = {client_url}
# Served at /.well-known/matrix/server: where other servers reach us.
server = {delegated}

[sessions]
# Access tokens of clients that ask for refresh tokens (`refresh_token: true`
# at login) expire after this long; the client trades its refresh token at
# /refresh for a new pair. Other clients' tokens never expire.
refreshable_lifetime_secs = 300

[rate_limits]
# Token buckets: each user (or client address, or account) may act `burst`
# times at once, then `per_second` times a second; more gets 429
# M_LIMIT_EXCEEDED. Counted per shard (a client's connection stays on one).
# The defaults are Synapse's. Turn off for tests and benchmarks only.
enable = true
message = {{ per_second = 0.2, burst = 10 }}        # sending events, per user
registration = {{ per_second = 0.17, burst = 3 }}  # per client address
login = {{ per_second = 0.003, burst = 5 }}        # per client address
login_failure = {{ per_second = 0.17, burst = 3 }} # failed logins, per account
join = {{ per_second = 0.1, burst = 10 }}          # joining rooms, per user
room_creation = {{ per_second = 0.016, burst = 10 }} # per user
token_validity = {{ per_second = 0.1, burst = 5 }}  # registration token checks, per address

# Single sign-on through a CAS server (off unless server_url is set). Users
# sign in at <server_url>/login; tickets are checked at
# <server_url>/proxyValidate. A CAS user name maps to the localpart of the
# same name (an existing account of that name is taken to be the same person).
# [cas]
# server_url = "https://cas.example.com/cas"
# The base URL clients reach this server at ([well_known] client if unset).
# service_url = "https://matrix.example.com"
# The CAS attribute that names new accounts (the CAS user name otherwise).
# displayname_attribute = "displayName"
# Attributes a CAS user must have, with these values, to sign in.
# required_attributes = {{ department = "engineering" }}

[logging]
# "pretty" or "json".
format = "pretty"
# A tracing filter, e.g. "info" or "info,tessera_net=debug". RUST_LOG wins.
level = "info"

[metrics]
# Prometheus metrics at /metrics on the client listener.
enable = true
"#
    )
}
