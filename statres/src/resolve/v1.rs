//! State resolution for room version 1 (`content/rooms/v1.md`, "State
//! resolution"), with the details the spec leaves open settled as the
//! reference implementation settles them: a key is conflicted only where two
//! state sets hold different events for it; each pass resolves its keys
//! against the state as it was before the pass; a non-auth key whose
//! candidates all fail auth takes the candidate of least depth.

use std::collections::HashMap;

use sha1::{Digest, Sha1};

use super::budget::{Meter, CHUNK};
use super::conflicted::{state_key, NONE};
use super::iterative::is_authorised;
use crate::auth_chain::{EventIdx, RoomGraph};
use crate::event::{types, Event};

pub(super) async fn resolve<E: Event, S: AsRef<[EventIdx]>>(
    graph: &RoomGraph<E>,
    sets: &[S],
    meter: &Meter,
) -> Vec<EventIdx> {
    let mut state = vec![NONE; graph.key_count()];
    let mut conflicts: HashMap<u32, Vec<u32>> = HashMap::new();
    for chunk in sets.iter().flat_map(|set| set.as_ref().chunks(CHUNK)) {
        meter.spend(chunk.len()).await;
        for &EventIdx(event) in chunk {
            let Some(key) = state_key(graph, event) else { continue };
            let key = key as u32;
            let slot = &mut state[key as usize];
            if let Some(candidates) = conflicts.get_mut(&key) {
                if !candidates.contains(&event) {
                    candidates.push(event);
                }
            } else if *slot == NONE {
                *slot = event;
            } else if *slot != event {
                conflicts.insert(key, vec![*slot, event]);
                *slot = NONE;
            }
        }
    }
    let power_levels = graph.key_index(types::POWER_LEVELS, "").map(|key| key.0);
    let event_type = |key: u32| graph.event(EventIdx(conflicts[&key][0])).event_type();
    let mut passes: [Vec<u32>; 4] = Default::default();
    for &key in conflicts.keys() {
        let pass = match event_type(key) {
            _ if Some(key) == power_levels => 0,
            types::JOIN_RULES => 1,
            types::MEMBER => 2,
            _ => 3,
        };
        passes[pass].push(key);
    }
    for (pass, keys) in passes.iter().enumerate() {
        let mut resolved = Vec::with_capacity(keys.len());
        for &key in keys {
            meter.spend(conflicts[&key].len()).await;
            let candidates = ordered(graph, &conflicts[&key]);
            let winner = if pass < 3 {
                resolve_auth_key(graph, &mut state, key, &candidates)
            } else {
                let passing = candidates.iter().copied().find(|&e| is_authorised(graph, &state, e, false));
                passing.unwrap_or(candidates[candidates.len() - 1])
            };
            resolved.push((key, winner));
        }
        for (key, winner) in resolved {
            state[key as usize] = winner;
        }
    }
    state.into_iter().filter(|&e| e != NONE).map(EventIdx).collect()
}

/// Candidates by descending depth, then ascending SHA-1 of the event ID.
fn ordered<E: Event>(graph: &RoomGraph<E>, candidates: &[u32]) -> Vec<u32> {
    let mut keyed: Vec<(std::cmp::Reverse<u64>, [u8; 20], u32)> = candidates
        .iter()
        .map(|&e| {
            let event = graph.event(EventIdx(e));
            (std::cmp::Reverse(event.depth()), Sha1::digest(event.event_id().as_bytes()).into(), e)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, e)| e).collect()
}

/// Power levels, join rules and membership keys: from the least deep
/// candidate up, each next candidate replaces the previous if the auth rules
/// allow it against the state holding the previous one; the first refusal
/// ends the chain. Leaves `state[key]` as it found it.
fn resolve_auth_key<E: Event>(graph: &RoomGraph<E>, state: &mut [u32], key: u32, candidates: &[u32]) -> u32 {
    let before = state[key as usize];
    let mut accepted = candidates[candidates.len() - 1];
    for &next in candidates.iter().rev().skip(1) {
        state[key as usize] = accepted;
        if !is_authorised(graph, state, next, false) {
            break;
        }
        accepted = next;
    }
    state[key as usize] = before;
    accepted
}
