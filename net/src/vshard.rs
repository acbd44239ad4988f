//! Virtual shards: the fixed unit of data ownership.
//!
//! A room (or any other keyed piece of data) maps to one of a fixed number of
//! virtual shards by a stable hash of its key; virtual shards map to cores by
//! a table built at start-up. Storage partitions keys by virtual shard, so
//! changing the number of cores only rebuilds the table: no data moves, and a
//! room is still written by exactly one core. The hash must never change
//! between releases or platforms (it decides where data lives on disk), which
//! is why it is XXH3-64 with its default seed, a published algorithm, rather
//! than std's randomly keyed `DefaultHasher`.

/// Index of a virtual shard, `0..vshard_count`.
pub type VShard = u16;

/// The room → virtual shard → core routing table of one server process.
#[derive(Clone, Debug)]
pub struct VShardMap {
    /// `owner[v]` is the core (shard index) that owns virtual shard `v`.
    owner: Box<[u16]>,
    cores: u16,
}

impl VShardMap {
    /// Spreads `vshards` virtual shards over `cores` cores round-robin, so
    /// every core owns `vshards / cores` of them, give or take one.
    ///
    /// # Panics
    /// If either count is zero or `vshards` exceeds `u16::MAX + 1`; the
    /// configuration layer validates both before calling.
    pub fn new(vshards: usize, cores: usize) -> Self {
        assert!(vshards > 0 && vshards <= usize::from(u16::MAX) + 1, "vshards out of range");
        assert!(cores > 0 && cores <= usize::from(u16::MAX), "cores out of range");
        let owner = (0..vshards).map(|v| (v % cores) as u16).collect();
        Self { owner, cores: cores as u16 }
    }

    /// Number of virtual shards.
    pub fn vshard_count(&self) -> usize {
        self.owner.len()
    }

    /// Number of cores the virtual shards are spread over.
    pub fn core_count(&self) -> usize {
        usize::from(self.cores)
    }

    /// The virtual shard of a key (for rooms: the room ID's bytes).
    pub fn vshard_of(&self, key: &[u8]) -> VShard {
        (xxhash_rust::xxh3::xxh3_64(key) % self.owner.len() as u64) as VShard
    }

    /// The core that owns a virtual shard.
    pub fn core_of_vshard(&self, vshard: VShard) -> usize {
        usize::from(self.owner[usize::from(vshard)])
    }

    /// The core that owns a key.
    pub fn core_of(&self, key: &[u8]) -> usize {
        self.core_of_vshard(self.vshard_of(key))
    }

    /// The virtual shards a core owns, in ascending order.
    pub fn vshards_of_core(&self, core: usize) -> impl Iterator<Item = VShard> + '_ {
        self.owner.iter().enumerate().filter(move |(_, &c)| usize::from(c) == core).map(|(v, _)| v as VShard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vshard_of_key_is_independent_of_core_count() {
        let key = b"!OGEhHVWSdvArJzumhm:matrix.org";
        let one = VShardMap::new(256, 1);
        let many = VShardMap::new(256, 7);
        assert_eq!(one.vshard_of(key), many.vshard_of(key));
    }

    #[test]
    fn hash_is_stable_across_releases() {
        // Where data lives on disk depends on this value: if this test fails,
        // existing data directories would be read from the wrong partitions.
        let map = VShardMap::new(256, 2);
        assert_eq!(
            map.vshard_of(b"!room:example.org"),
            (xxhash_rust::xxh3::xxh3_64(b"!room:example.org") % 256) as u16
        );
        assert_eq!(xxhash_rust::xxh3::xxh3_64(b""), 0x2D06_8005_38D3_94C2);
    }

    #[test]
    fn every_core_owns_a_fair_share() {
        let map = VShardMap::new(256, 3);
        let counts: Vec<usize> = (0..3).map(|c| map.vshards_of_core(c).count()).collect();
        assert_eq!(counts.iter().sum::<usize>(), 256);
        assert!(counts.iter().all(|&n| n == 85 || n == 86), "{counts:?}");
    }

    #[test]
    fn rooms_spread_evenly_over_vshards() {
        let map = VShardMap::new(256, 2);
        let mut per_core = [0usize; 2];
        for i in 0..10_000 {
            per_core[map.core_of(format!("!room{i}:example.org").as_bytes())] += 1;
        }
        assert!(per_core.iter().all(|&n| (4_500..5_500).contains(&n)), "{per_core:?}");
    }
}
