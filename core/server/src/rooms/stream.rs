//! A shard's event stream: the positions of the events its rooms add.
//!
//! Positions are handed out in order when an event is prepared, but writes
//! become durable in their own time. The stream tracks the *durable
//! watermark*: the highest position below which every write has finished.
//! Notices (the fan-out to members' shards) are released in position order
//! as the watermark passes them, so a user's shard that has heard of
//! position `p` from this shard has heard of every earlier one too (the
//! mesh keeps each pair of shards in order). That is what lets a sync token
//! hold one position per shard.

use std::cell::RefCell;
use std::collections::BTreeMap;

use tessera_storage::records::StreamPos;

/// The positions of one shard.
pub struct ShardStream<N> {
    inner: RefCell<Inner<N>>,
}

struct Inner<N> {
    next: StreamPos,
    durable: StreamPos,
    /// Positions handed out and not yet passed by the watermark: `None`
    /// while the write is in flight, then what to release.
    in_flight: BTreeMap<StreamPos, Option<Vec<N>>>,
}

impl<N> ShardStream<N> {
    /// A stream whose next position is `start + 1`, with everything up to
    /// `start` durable.
    pub fn new(start: StreamPos) -> Self {
        Self { inner: RefCell::new(Inner { next: start + 1, durable: start, in_flight: BTreeMap::new() }) }
    }

    /// Hands out the next position.
    pub fn allocate(&self) -> StreamPos {
        let mut inner = self.inner.borrow_mut();
        let pos = inner.next;
        inner.next += 1;
        inner.in_flight.insert(pos, None);
        pos
    }

    /// The highest position handed out so far.
    pub fn last_allocated(&self) -> StreamPos {
        self.inner.borrow().next - 1
    }

    /// The durable watermark.
    pub fn durable(&self) -> StreamPos {
        self.inner.borrow().durable
    }

    /// Marks the write at `pos` finished (successfully or not: a failed
    /// write releases no notices, and its position stays a gap). Returns the
    /// notices the watermark now passes, in position order, and the new
    /// watermark.
    pub fn finish(&self, pos: StreamPos, notices: Vec<N>) -> (Vec<N>, StreamPos) {
        let mut inner = self.inner.borrow_mut();
        if let Some(slot) = inner.in_flight.get_mut(&pos) {
            *slot = Some(notices);
        }
        let mut released = Vec::new();
        while let Some(entry) = inner.in_flight.first_entry() {
            if entry.get().is_none() {
                break;
            }
            let (pos, notices) = entry.remove_entry();
            released.extend(notices.into_iter().flatten());
            inner.durable = pos;
        }
        (released, inner.durable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_write_finishing_first_waits_for_the_earlier_one() {
        let stream = ShardStream::new(10);
        let (a, b) = (stream.allocate(), stream.allocate());
        assert_eq!((a, b), (11, 12));
        assert_eq!(stream.finish(b, vec!["b"]), (vec![], 10));
        assert_eq!(stream.finish(a, vec!["a"]), (vec!["a", "b"], 12));
        assert_eq!(stream.durable(), 12);
    }

    #[test]
    fn failed_write_leaves_a_gap_that_does_not_block_the_watermark() {
        let stream = ShardStream::<&str>::new(0);
        let (a, b) = (stream.allocate(), stream.allocate());
        assert_eq!(stream.finish(a, vec![]), (vec![], 1));
        assert_eq!(stream.finish(b, vec!["b"]), (vec!["b"], 2));
    }
}
