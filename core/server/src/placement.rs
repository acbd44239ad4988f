//! Who owns what: users and rooms map to virtual shards by a hash of their
//! ID, virtual shards to shards by the table built at start-up (see
//! `tessera_net::vshard`). A room's shard alone writes its events; a user's
//! shard alone writes the user's rows and holds their sync state.

use tessera_net::vshard::VShardMap;
use tessera_storage::records::VShard;

/// The routing table, the same on every shard.
#[derive(Clone, Debug)]
pub struct Placement {
    map: VShardMap,
}

impl Placement {
    /// The table for `vshards` virtual shards over `shards` shards.
    pub fn new(vshards: usize, shards: usize) -> Self {
        Self { map: VShardMap::new(vshards, shards) }
    }

    /// The virtual shard of a user or room ID.
    pub fn vshard(&self, id: &str) -> VShard {
        self.map.vshard_of(id.as_bytes())
    }

    /// The shard that owns a user or room ID.
    pub fn shard(&self, id: &str) -> usize {
        self.map.core_of(id.as_bytes())
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.map.core_count()
    }
}
