//! Reading a room's event graph for other servers: stored PDUs as sent,
//! auth chains, walks back along `prev_events`, and who may read them.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;
use tessera_storage::records::{EventNid, RoomNid};
use tessera_storage::{AuthChain, Store};

use crate::error::ApiError;
use crate::rooms::room::Room;
use crate::rooms::visibility::HistoryVisibility;
use crate::state::AppShard;
use crate::store::AnyStore;

/// Most auth chain events one answer carries; a deeper chain is a room
/// this path is not built for yet (huge rooms join with partial state).
const MAX_AUTH_CHAIN: usize = 100_000;

/// Whether `server` may read the room's events: the room's ACL allows it,
/// and one of its users is in the room or the room is world-readable (as
/// Synapse lets servers read what their users could).
pub fn server_may_read(room: &Room, server: &str) -> bool {
    super::acl::allows(room, server)
        && (room.has_member_of(server)
            || HistoryVisibility::of(room.state.event("m.room.history_visibility", "").map(|e| &**e))
                == HistoryVisibility::WorldReadable)
}

/// 403 unless `server` may read the room.
pub fn require_readable(room: &Room, server: &str) -> Result<(), ApiError> {
    match server_may_read(room, server) {
        true => Ok(()),
        false => Err(ApiError::forbidden(format!("{server} may not read the room"))),
    }
}

/// The stored PDUs of `ids`, as other servers are sent them.
pub async fn pdus(shard: &AppShard, ids: &[String]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let record = shard.state.store.event(id).await?;
        let pdu: Value = record
            .and_then(|r| serde_json::from_slice(&r.json).ok())
            .ok_or_else(|| ApiError::internal(format!("event {id} is not stored")))?;
        out.push(pdu);
    }
    Ok(out)
}

/// The IDs of every event in the auth chains of `ids` (events of the room
/// numbered `room`): their auth events, and theirs, and so on, excluding
/// `ids` themselves unless one authorises another. Read from the store's
/// auth-chain index: for state events (`/state`, `/send_join`) from their
/// own numbers, for others (not indexed) from their auth events'. Events
/// stored before the index existed are walked from their JSON instead.
pub async fn auth_chain_ids(shard: &AppShard, room: RoomNid, ids: &[String]) -> Result<Vec<String>, ApiError> {
    let store = &shard.state.store;
    if let Some(chain) = indexed_auth_chain(store, room, ids, false).await? {
        return Ok(chain);
    }
    let mut start: Vec<String> = Vec::new();
    for id in ids {
        if let Some(event) = crate::rooms::stored_event(store, id).await? {
            start.extend(event.auth_events.iter().cloned());
        }
    }
    start.sort_unstable();
    start.dedup();
    match indexed_auth_chain(store, room, &start, true).await? {
        Some(chain) => Ok(chain),
        None => walked_auth_chain(store, start).await,
    }
}

fn too_large() -> ApiError {
    ApiError::new(503, "M_UNKNOWN", "the room's auth chain is too large to send at once")
}

/// The auth chains of `from` from the index, and `from` itself when
/// `with_from`; `None` if one of them or part of a chain is not indexed.
async fn indexed_auth_chain(
    store: &AnyStore,
    room: RoomNid,
    from: &[String],
    with_from: bool,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(nids) = store.event_nids_of(room, from).await?.into_iter().collect::<Option<Vec<EventNid>>>() else {
        return Ok(None);
    };
    let mut all = match store.auth_chain(room, &nids, MAX_AUTH_CHAIN).await? {
        AuthChain::Events(chain) => chain,
        AuthChain::NotIndexed => return Ok(None),
        AuthChain::TooLarge => return Err(too_large()),
    };
    if with_from {
        all.extend(nids);
        all.sort_unstable();
        all.dedup();
        if all.len() > MAX_AUTH_CHAIN {
            return Err(too_large());
        }
    }
    Ok(store.event_ids_of(room, &all).await?.into_iter().collect())
}

/// `pending` and their auth chains, one stored event at a time.
async fn walked_auth_chain(store: &AnyStore, mut pending: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    while let Some(id) = pending.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        if seen.len() > MAX_AUTH_CHAIN {
            return Err(too_large());
        }
        let Some(event) = crate::rooms::stored_event(store, &id).await? else { continue };
        pending.extend(event.auth_events.iter().filter(|a| !seen.contains(*a)).cloned());
        out.push(id);
    }
    Ok(out)
}

/// Walks back from `from` along `prev_events`, deepest first, collecting
/// up to `limit` events of `room_id` (those of `from` included when
/// `inclusive`), never going past `stop` or below `min_depth`: what
/// `/backfill` and `/get_missing_events` answer. Oldest first.
pub async fn walk_back(
    shard: &AppShard,
    room_id: &str,
    from: &[String],
    inclusive: bool,
    stop: &HashSet<String>,
    limit: usize,
    min_depth: u64,
) -> Result<Vec<(u64, String)>, ApiError> {
    let store = &shard.state.store;
    // Candidates by (depth, ID), the deepest taken first.
    let mut frontier: BTreeSet<(u64, String)> = BTreeSet::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut found = Vec::new();
    for id in from {
        let Some(event) = crate::rooms::stored_event(store, id).await? else { continue };
        if event.room_id != room_id || !seen.insert(id.clone()) {
            continue;
        }
        if inclusive {
            frontier.insert((event.depth, event.event_id.clone()));
        } else {
            for prev in &event.prev_events {
                if let Some(prev) = crate::rooms::stored_event(store, prev).await? {
                    if seen.insert(prev.event_id.clone()) {
                        frontier.insert((prev.depth, prev.event_id.clone()));
                    }
                }
            }
        }
    }
    while let Some((depth, id)) = frontier.pop_last() {
        if found.len() >= limit {
            break;
        }
        if stop.contains(&id) || depth < min_depth {
            continue;
        }
        let Some(event) = crate::rooms::stored_event(store, &id).await? else { continue };
        if event.room_id != room_id {
            continue;
        }
        for prev in &event.prev_events {
            if seen.insert(prev.clone()) {
                if let Some(prev) = crate::rooms::stored_event(store, prev).await? {
                    frontier.insert((prev.depth, prev.event_id.clone()));
                }
            }
        }
        found.push((depth, id));
    }
    found.reverse();
    Ok(found)
}
