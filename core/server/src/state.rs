//! What each shard owns, and what all shards share read-only.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tessera_net::http::Listener;
use tessera_net::metrics::HttpSnapshot;
use tessera_net::shard::Shard;
use tessera_net::shutdown::Shutdown;

use crate::config::Config;

/// A shard as the homeserver sees it.
pub type AppShard = Rc<Shard<ShardState>>;

/// One shard's state. Lives on its shard's thread only.
pub struct ShardState {
    /// The configuration (shared, immutable).
    pub config: Arc<Config>,
    /// This shard's shutdown latch.
    pub shutdown: Rc<Shutdown>,
    /// This shard's listeners, for metrics.
    pub listeners: RefCell<Vec<Rc<Listener>>>,
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
