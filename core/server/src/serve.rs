//! `tessera serve`: start one shard per core and serve until a signal.
//!
//! Start-up order: load and check everything that can fail (config, data
//! directory lock, signing key, TLS certificates) on the main thread, then
//! start the shards. Each shard binds its own `SO_REUSEPORT` socket per
//! address and reports back; only when every shard is listening does the
//! server log that it is ready. A failure on any shard stops them all.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;

use tessera_net::http::{Listener, TrustedProxies};
use tessera_net::mesh::Mesh;
use tessera_net::runtime::{spawn, TcpListener};
use tessera_net::shard::{self, Shard, ShardSpec};
use tessera_net::shutdown::{self, Shutdown};
use tessera_storage::data_dir::DataDir;
use tessera_storage::embedded::{EmbeddedConfig, EmbeddedDb};
use tessera_storage::postgres::{PgConfig, PgDb};

use tessera_proto::identifiers::ServerName;
use tessera_proto::keys::{parse_key_file, SigningKey};

use crate::api;
use crate::config::{self, Config, ListenerSection};
use crate::federation::Federation;
use crate::placement::Placement;
use crate::rooms::Rooms;
use crate::state::{AppShard, ServerKeys, ShardState};
use crate::store::{AnyStore, ShardRuntime};
use crate::sync::SyncHub;

/// Batches each shard's mesh inbox holds before senders wait.
const INBOX_BATCHES: usize = 256;

/// TLS configuration per listener, loaded once and shared by all shards.
struct Tls {
    client: Option<Arc<rustls::ServerConfig>>,
    federation: Option<Arc<rustls::ServerConfig>>,
}

/// Everything `serve` loads before starting shards; `check-config` stops
/// after this.
pub struct Prepared {
    config: Arc<Config>,
    tls: Tls,
    keys: Arc<ServerKeys>,
    /// Roots trusted for requests to other servers.
    outbound_tls: Arc<rustls::ClientConfig>,
}

/// Loads the config and checks the files it names.
pub fn prepare(config: Config) -> Result<Prepared, String> {
    let keys = load_keys(&config)?;
    let tls_of = |name: &str, l: &ListenerSection| -> Result<_, String> {
        match (&l.tls_certificate, &l.tls_private_key) {
            (Some(cert), Some(key)) if l.enable => tessera_net::tls::server_config(cert, key)
                .map(Some)
                .map_err(|e| format!("listeners.{name}.tls_certificate: {e}")),
            _ => Ok(None),
        }
    };
    let tls = Tls {
        client: tls_of("client", &config.listeners.client)?,
        federation: tls_of("federation", &config.listeners.federation)?,
    };
    let outbound_tls = tessera_net::http::client_tls_config(&config.federation.trusted_ca_files)
        .map_err(|e| format!("federation.trusted_ca_files: {e}"))?;
    Ok(Prepared { config: Arc::new(config), tls, keys: Arc::new(keys), outbound_tls })
}

fn load_keys(config: &Config) -> Result<ServerKeys, String> {
    let path = &config.signing_key_path;
    let text = std::fs::read_to_string(path).map_err(|e| format!("signing_key_path: {}: {e}", path.display()))?;
    let current: Vec<SigningKey> =
        parse_key_file(&text).map_err(|e| format!("signing_key_path: {}: {e}", path.display()))?;
    if current.is_empty() {
        return Err(format!("signing_key_path: {} holds no key", path.display()));
    }
    let old = config.old_verify_keys.iter().map(|k| k.to_proto()).collect::<Result<_, _>>()?;
    let server_name = ServerName::parse(&config.server_name).map_err(|e| format!("server_name: {e}"))?;
    Ok(ServerKeys { server_name, current, old })
}

/// Runs the server until SIGTERM/SIGINT. Returns once every shard has
/// finished its in-flight requests.
pub fn run(prepared: Prepared) -> Result<(), String> {
    let Prepared { config, tls, keys, outbound_tls } = prepared;
    let data_dir = DataDir::open(&config.data_dir, config.server.vshards).map_err(|e| e.to_string())?;
    ensure_ports_free(&config)?;
    let db = Backend::open(&config, &data_dir).map_err(|e| format!("storage: {e}"))?;
    let shards = config.shard_count();
    tracing::info!(
        server_name = %config.server_name,
        shards,
        vshards = data_dir.vshards(),
        key = %keys.current[0].key_id(),
        public_key = %keys.current[0].public_key().to_base64(),
        "starting"
    );

    let (mesh, inboxes) = Mesh::<ShardState>::new(shards, INBOX_BATCHES);
    // Sync tokens name the run that issued them (see `sync::token`).
    let epoch = crate::request::now_ms();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
    let tls = Arc::new(tls);
    let main_config = config.clone();
    let main_db = db.clone();
    let handles = shard::launch("shard", config.server.pin_threads, inboxes, move |spec: ShardSpec<ShardState>| {
        let config = config.clone();
        let tls = tls.clone();
        let keys = keys.clone();
        let outbound_tls = outbound_tls.clone();
        let db = db.clone();
        let ready = ready_tx.clone();
        async move {
            let id = spec.id;
            let shutdown = Shutdown::new();
            let store = match db.shard_store(id).await {
                Ok(store) => store,
                Err(e) => {
                    let e = format!("storage: {e}");
                    let _ = ready.send(Err(e.clone()));
                    return Err(io::Error::other(e));
                }
            };
            let rooms = match Rooms::open(&store, id, shards).await {
                Ok(rooms) => rooms,
                Err(e) => {
                    let e = format!("storage: {e}");
                    let _ = ready.send(Err(e.clone()));
                    return Err(io::Error::other(e));
                }
            };
            let sync = SyncHub::new(shards, rooms.stream.durable(), epoch);
            let state = ShardState {
                config: config.clone(),
                keys,
                store,
                shutdown: shutdown.clone(),
                listeners: Default::default(),
                placement: Placement::new(config.server.vshards, shards),
                tokens: Default::default(),
                registered_sessions: Default::default(),
                handoffs: Default::default(),
                rate_limits: Default::default(),
                rooms,
                sync,
                federation: Federation::new(outbound_tls.clone()),
                key_counts: Default::default(),
            };
            let shard = Shard::start(spec.id, spec.inbox, state);
            let sockets = match bind_listeners(&shard, &config, &tls) {
                Ok(sockets) => sockets,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return Err(e);
                }
            };
            tracing::debug!(shard = id, cpu = ?spec.cpu, "shard listening");
            let _ = ready.send(Ok(id));
            let tasks: Vec<_> = sockets.into_iter().map(|(listener, socket)| spawn(listener.serve(socket))).collect();
            for task in tasks {
                task.await;
            }
            tracing::debug!(shard = id, "shard stopped");
            Ok(())
        }
    })
    .map_err(|e| format!("cannot start shard threads: {e}"))?;

    let stop_all = {
        let mesh = mesh.clone();
        move || {
            for k in 0..mesh.shard_count() {
                mesh.inject(k, |shard: &AppShard| shard.state.shutdown.trigger());
            }
        }
    };
    let mut failure = None;
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(_) => {
                failure = Some("a shard thread exited during start-up".to_owned());
                break;
            }
        }
    }
    if failure.is_some() {
        stop_all();
    } else {
        shutdown::on_termination_signal(stop_all).map_err(|e| format!("cannot install signal handlers: {e}"))?;
        log_ready(&main_config, shards);
    }

    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e.to_string())),
            Err(_) => failure = failure.or(Some("a shard panicked".to_owned())),
        }
    }
    if let Err(e) = main_db.sync() {
        failure = failure.or(Some(format!("storage: final sync failed: {e}")));
    }
    drop(main_db);
    drop(data_dir);
    match failure {
        None => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Some(e) => Err(e),
    }
}

/// Fails if another process already listens on one of our addresses. The
/// shards bind with `SO_REUSEPORT`, which the kernel lets two processes of
/// the same user share silently, splitting connections between them; a
/// plain bind here (no `SO_REUSEPORT`) fails instead while anyone listens.
fn ensure_ports_free(config: &Config) -> Result<(), String> {
    for (name, section) in [("client", &config.listeners.client), ("federation", &config.listeners.federation)] {
        if !section.enable {
            continue;
        }
        for addr in &section.bind {
            std::net::TcpListener::bind(addr)
                .map_err(|e| format!("listeners.{name}: cannot listen on {addr}: {e} (is another server running?)"))?;
        }
    }
    Ok(())
}

type Bound = Vec<(Rc<Listener>, TcpListener)>;

fn bind_listeners(shard: &AppShard, config: &Config, tls: &Tls) -> io::Result<Bound> {
    let shards = shard.shard_count();
    let mut bound = Vec::new();
    let specs = [
        ("client", &config.listeners.client, tls.client.clone(), api::client_router as fn(&AppShard) -> _),
        ("federation", &config.listeners.federation, tls.federation.clone(), api::federation_router),
    ];
    for (name, section, tls, router) in specs {
        if !section.enable {
            continue;
        }
        let listener = Listener::new(
            name,
            router(shard),
            config.net_limits(shards),
            TrustedProxies::new(section.trusted_proxies.clone()),
            tls,
            shard.state.shutdown.clone(),
        );
        shard.state.listeners.borrow_mut().push(listener.clone());
        for addr in &section.bind {
            bound.push((listener.clone(), Listener::bind(*addr)?));
        }
    }
    Ok(bound)
}

fn log_ready(config: &Config, shards: usize) {
    let addrs = |l: &ListenerSection| -> Vec<SocketAddr> {
        if l.enable {
            l.bind.clone()
        } else {
            Vec::new()
        }
    };
    tracing::info!(
        shards,
        client = ?addrs(&config.listeners.client),
        federation = ?addrs(&config.listeners.federation),
        "ready"
    );
}

/// The configured backend, opened once per process (on the main thread:
/// opening may block on disk or on resolving the database's host name).
#[derive(Clone)]
enum Backend {
    Embedded(EmbeddedDb),
    Postgres(PgDb),
}

impl Backend {
    fn open(config: &Config, data_dir: &DataDir) -> tessera_storage::Result<Self> {
        let s = &config.storage;
        Ok(match s.backend {
            // fjall starts its flush and compaction workers when opened:
            // opened from a background-priority thread, they inherit it.
            config::Backend::Embedded => Self::Embedded(tessera_net::shard::start_in_background(|| {
                EmbeddedDb::open(&EmbeddedConfig {
                    path: data_dir.path().join("db"),
                    cache_bytes: s.cache_mib << 20,
                    write_buffer_bytes: s.write_buffer_mib << 20,
                    sync_writes: s.sync_writes,
                })
            })?),
            config::Backend::Postgres => {
                let bad = |key: &str, e: &dyn std::fmt::Display| {
                    tessera_storage::StorageError::Backend(format!("storage.{key}: {e}"))
                };
                let roots =
                    tessera_net::http::root_store(&s.postgres_ca_files).map_err(|e| bad("postgres_ca_files", &e))?;
                let read = |key: &str, path: &std::path::Path| {
                    std::fs::read(path).map_err(|e| bad(key, &format!("{}: {e}", path.display())))
                };
                let identity = match (&s.postgres_client_cert, &s.postgres_client_key) {
                    (Some(cert), Some(key)) => {
                        Some((read("postgres_client_cert", cert)?, read("postgres_client_key", key)?))
                    }
                    _ => None,
                };
                let identity = identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice()));
                let tls = tessera_storage::postgres::tls::client_config(roots, identity)
                    .map_err(|e| bad("postgres_client_cert", &e))?;
                Self::Postgres(PgDb::new(&PgConfig {
                    url: s.postgres_url.clone().unwrap_or_default(),
                    readers: s.postgres_readers,
                    sync_writes: s.sync_writes,
                    tls: Some(tls),
                })?)
            }
        })
    }

    /// Shard `id`'s handle; runs on that shard.
    async fn shard_store(&self, id: usize) -> tessera_storage::Result<AnyStore> {
        Ok(match self {
            Self::Embedded(db) => AnyStore::Embedded(db.shard_store(id)?),
            Self::Postgres(db) => AnyStore::Postgres(db.shard_store(&ShardRuntime, id).await?),
        })
    }

    /// Makes every acknowledged write durable before exit (matters only
    /// when writes are not synced as they are acknowledged).
    fn sync(&self) -> tessera_storage::Result<()> {
        match self {
            Self::Embedded(db) => db.sync(),
            // PostgreSQL flushes its own WAL.
            Self::Postgres(_) => Ok(()),
        }
    }
}
