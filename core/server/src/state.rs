//! What each shard owns, and what all shards share read-only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tessera_net::http::Listener;
use tessera_net::metrics::HttpSnapshot;
use tessera_net::shard::Shard;
use tessera_net::shutdown::Shutdown;

use tessera_proto::identifiers::ServerName;
use tessera_proto::keys::{OldVerifyKey, SigningKey};

use crate::auth::TokenCache;
use crate::config::Config;
use crate::federation::Federation;
use crate::placement::Placement;
use crate::rooms::Rooms;
use crate::store::AnyStore;
use crate::sync::SyncHub;

/// A shard as the homeserver sees it.
pub type AppShard = Rc<Shard<ShardState>>;

/// One shard's state. Lives on its shard's thread only.
pub struct ShardState {
    /// The configuration (shared, immutable).
    pub config: Arc<Config>,
    /// The server's signing keys (shared, immutable).
    pub keys: Arc<ServerKeys>,
    /// This shard's handle on the store.
    pub store: AnyStore,
    /// This shard's shutdown latch.
    pub shutdown: Rc<Shutdown>,
    /// This shard's listeners, for metrics.
    pub listeners: RefCell<Vec<Rc<Listener>>>,
    /// Which shard owns which user and room (shared table, copied).
    pub placement: Placement,
    /// Access tokens this shard has seen.
    pub tokens: TokenCache,
    /// UIA sessions that completed a registration on this shard → the
    /// account they created (memory only: a repeat after a restart is
    /// refused as a taken name).
    pub registered_sessions: RefCell<HashMap<String, String>>,
    /// Rate limit buckets of the requests this shard served.
    pub rate_limits: crate::rate_limit::RateLimiter,
    /// Login tokens and single sign-on stages whose keys hash to this shard.
    pub handoffs: crate::accounts::handoff::Handoffs,
    /// The rooms this shard owns, and its event stream.
    pub rooms: Rooms,
    /// Sync state of this shard's users.
    pub sync: SyncHub,
    /// Connections to other servers and what this shard knows of them.
    pub federation: Federation,
    /// One-time and fallback key counts of this shard's users' devices.
    pub key_counts: crate::accounts::keys::CountsCache,
}

impl ShardState {
    /// Request statistics of every listener on shard `shard` (this one).
    pub fn http_snapshot(&self, shard: usize) -> HttpSnapshot {
        let mut all = HttpSnapshot::default();
        for listener in self.listeners.borrow().iter() {
            all.merge(listener.metrics.snapshot());
        }
        all.attribute_to_shard(shard);
        all
    }
}

/// The server's identity: its name and signing keys.
pub struct ServerKeys {
    /// `server_name`, parsed.
    pub server_name: ServerName,
    /// Keys the server signs with (at least one; the first signs events).
    pub current: Vec<SigningKey>,
    /// Retired keys, still published.
    pub old: Vec<OldVerifyKey>,
}
