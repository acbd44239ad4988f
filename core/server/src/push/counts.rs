//! Unread notification counts (spec: client-server API, "Receiving
//! notifications"): for each joined room, how many events since the user's
//! read receipt notify them (`notification_count`) and how many of those
//! highlight (`highlight_count`), by their push rules. `/sync` reports them
//! in `unread_notifications`.
//!
//! Counted on the room's shard, where the room's events, state and receipts
//! are, with the user's rules brought along in the sync's query. Each room
//! keeps, per user, how far it counted and the rules it counted with; each
//! new event is counted for those users as it enters the room
//! ([`UnreadCache::on_append`]), and a local user is counted from their
//! join with the default rules ([`UnreadCache::joined`]), so a sync only
//! reads the counts. A sync walks the timeline only for a user it has not
//! counted for yet (after a restart), whose read receipt moved, or whose
//! rules are not the ones counted with: a walk that reaches past the room's
//! recent events reads and parses them from the store. The position read
//! up to is the newest of the user's unthreaded
//! (or `main` thread) `m.read` and `m.read.private` receipts, or the join
//! when there is none. The user's own events never count.
//!
//! Kept in memory: after a restart the first sync counts again from the
//! receipt. One count walks at most [`MAX_COUNTED`] events; a room further
//! behind is caught up over the next syncs, so a user back from a long
//! absence cannot make one sync walk a room's whole history.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;
use tessera_storage::records::StreamPos;
use tessera_storage::{Direction, Store};

use super::evaluate::{Compiled, RoomFacts};
use crate::error::ApiError;
use crate::rooms::event::RoomEvent;
use crate::rooms::read::timeline;
use crate::rooms::room::Room;
use crate::state::AppShard;

/// Most events one count looks at.
pub const MAX_COUNTED: usize = 1000;
/// Events read per step.
const PAGE: usize = 100;

/// A user's rule set as a sync carries it to the rooms' shards, with a
/// fingerprint that changes when the rules do.
pub struct UserRules {
    pub rules: Compiled,
    pub fingerprint: u64,
}

impl UserRules {
    /// The rule set of `user_id` from their stored `m.push_rules` content.
    pub fn new(user_id: &str, stored: Option<&Value>) -> Self {
        let rules = super::rules::ruleset(user_id, stored);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        Value::Object(rules.clone()).to_string().hash(&mut hasher);
        Self { rules: Compiled::new(&rules), fingerprint: hasher.finish() }
    }
}

/// Per user: how far a room counted, and what.
#[derive(Default)]
pub struct UnreadCache(HashMap<String, Unread>);

struct Unread {
    rules: Arc<UserRules>,
    /// The receipts counted from, as event IDs.
    read_key: Vec<String>,
    counted_to: StreamPos,
    notify: u64,
    highlight: u64,
}

impl Unread {
    fn count(&mut self, event: &RoomEvent, facts: &Facts<'_>) {
        let outcome = self.rules.rules.evaluate(event, facts);
        self.notify += u64::from(outcome.notify);
        self.highlight += u64::from(outcome.highlight);
    }
}

impl UnreadCache {
    /// Counts `event`, which just entered `room` at `pos`, for every user
    /// whose count had reached `previous` (the room's newest position
    /// before it); the others catch up at their next sync. Runs on the
    /// room's shard as the event is applied, before its write is durable:
    /// a count may name an event one sync before the timeline shows it.
    pub fn on_append(room: &mut Room, event: &RoomEvent, pos: StreamPos, previous: StreamPos) {
        if room.unread.0.is_empty() {
            return;
        }
        let mut cache = std::mem::take(&mut room.unread);
        for (user_id, unread) in cache.0.iter_mut().filter(|(_, u)| u.counted_to >= previous && u.counted_to < pos) {
            if event.sender != *user_id {
                unread.count(event, &Facts::of(room, user_id));
            }
            unread.counted_to = pos;
        }
        room.unread = cache;
    }

    /// Starts counting for `user_id`, a local user who just joined `room`
    /// at `pos`, with the server-default rules: their first sync then finds
    /// the count up to date instead of walking the timeline from the join,
    /// which after a burst of joins means every joiner reads and parses the
    /// joins after theirs from the store (300 members: 240 ms p99 in
    /// `loadtest` fanout). A user whose rules are not the defaults is
    /// recounted at their first sync, as the fingerprints differ.
    pub fn joined(room: &mut Room, user_id: &str, pos: StreamPos) {
        let read_key = read_receipts(room, user_id);
        let rules = Arc::new(UserRules::new(user_id, None));
        room.unread.0.insert(user_id.to_owned(), Unread { rules, read_key, counted_to: pos, notify: 0, highlight: 0 });
    }

    /// Stops counting for `user_id`, who is no longer joined to `room`:
    /// syncs report counts for joined rooms only, and every counted user
    /// costs an evaluation of each new event.
    pub fn left(room: &mut Room, user_id: &str) {
        room.unread.0.remove(user_id);
    }
}

/// The counts a sync reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub notify: u64,
    pub highlight: u64,
}

/// The facts of a room the conditions ask about, as the room is now (not
/// as it was at each event, a simplification: the counts concern the recent
/// past).
struct Facts<'a> {
    room: &'a Room,
    display_name: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// The facts for `user_id` in `room`.
    fn of(room: &'a Room, user_id: &str) -> Self {
        let display_name = room
            .state
            .event("m.room.member", user_id)
            .and_then(|member| member.content.get("displayname"))
            .and_then(Value::as_str);
        Self { room, display_name }
    }
}

impl RoomFacts for Facts<'_> {
    fn member_count(&self) -> u64 {
        self.room.state.joined_count() as u64
    }
    fn display_name(&self) -> Option<&str> {
        self.display_name
    }
    fn sender_may_notify(&self, sender: &str, key: &str) -> bool {
        self.room.has_power(sender, |levels| levels.notification(key))
    }
}

/// The user's read receipts that count, as event IDs (sorted). Looked up
/// by key, not by a walk over the room's receipts: a sync of a large room
/// must not cost one step per member.
fn read_receipts(room: &Room, user_id: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for kind in ["m.read", "m.read.private"] {
        for thread in [None, Some("main")] {
            let key = (kind.to_owned(), user_id.to_owned(), thread.map(str::to_owned));
            if let Some(receipt) = room.receipts.get(&key) {
                ids.push(receipt.event_id.clone());
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// Where `event_id` is in the room's timeline, if it is.
async fn position_of(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    event_id: &str,
) -> Result<Option<StreamPos>, ApiError> {
    let cached = room.borrow().recent.iter().find(|(_, e)| e.event_id == event_id).map(|(pos, _)| *pos);
    if cached.is_some() {
        return Ok(cached);
    }
    Ok(shard.state.store.event(event_id).await?.and_then(|record| record.stream_pos))
}

/// `user_id`'s counts in `room` as of position `end`, on the room's shard.
pub async fn counts(
    shard: &AppShard,
    room: &Rc<RefCell<Room>>,
    user_id: &str,
    rules: &Arc<UserRules>,
    end: StreamPos,
) -> Result<Counts, ApiError> {
    let (read_key, joined_at) = {
        let room = room.borrow();
        (read_receipts(&room, user_id), room.state.joined_at(user_id).unwrap_or(0))
    };
    let kept = room.borrow_mut().unread.0.remove(user_id);
    let mut unread = match kept {
        // The sync's rules replace equal ones counted with since the join,
        // so that one copy per user stays.
        Some(kept) if kept.rules.fingerprint == rules.fingerprint && kept.read_key == read_key => {
            Unread { rules: rules.clone(), ..kept }
        }
        _ => {
            let mut from = joined_at;
            for event_id in &read_key {
                from = from.max(position_of(shard, room, event_id).await?.unwrap_or(0));
            }
            Unread { rules: rules.clone(), read_key, counted_to: from, notify: 0, highlight: 0 }
        }
    };
    let mut scanned = 0;
    while unread.counted_to < end && scanned < MAX_COUNTED {
        let events = timeline(shard, room, Some(unread.counted_to), Some(end + 1), Direction::Forward, PAGE).await?;
        // A short page ends the range.
        let last = match events.last() {
            Some((pos, _)) if events.len() == PAGE => *pos,
            _ => end,
        };
        {
            let room = room.borrow();
            let facts = Facts::of(&room, user_id);
            for (_, event) in events.iter().filter(|(_, e)| e.sender != user_id) {
                unread.count(event, &facts);
            }
        }
        scanned += events.len();
        unread.counted_to = last;
    }
    let counts = Counts { notify: unread.notify, highlight: unread.highlight };
    room.borrow_mut().unread.0.insert(user_id.to_owned(), unread);
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use tessera_proto::room_version::RoomVersionRules;

    use super::*;

    #[test]
    fn a_member_who_left_is_counted_no_more() {
        let mut room = Room::empty("!r:x".into(), 0, 7, RoomVersionRules::get("11").unwrap()).unwrap();
        UnreadCache::joined(&mut room, "@a:x", 1);
        UnreadCache::joined(&mut room, "@b:x", 2);
        UnreadCache::left(&mut room, "@a:x");
        assert_eq!(room.unread.0.keys().collect::<Vec<_>>(), ["@b:x"]);
    }
}
