//! The two orderings of state resolution v2 ("Definitions"): the *reverse
//! topological power ordering* (Kahn's algorithm, smallest candidate first by
//! sender power, timestamp, event ID) and the *mainline ordering*.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::budget::{Meter, CHUNK};
use super::conflicted::{FULL_CONFLICTED, POWER_SORTED};
use crate::auth::power_levels::PowerLevels;
use crate::auth::Creators;
use crate::auth_chain::{EventIdx, KeyIdx, RoomGraph};
use crate::event::{is_power_event, types, Event};

/// Step 1: the power events of the full conflicted set plus their auth
/// chains within it, flagged `POWER_SORTED` and sorted by the reverse
/// topological power ordering.
pub(super) async fn power_events_sorted<E: Event>(
    graph: &RoomGraph<E>,
    full: &[u32],
    flags: &mut [u8],
    meter: &Meter,
) -> Vec<u32> {
    // Collect X: follow auth edges only through the full conflicted set.
    let mut members = Vec::new();
    let mut stack: Vec<u32> = Vec::new();
    for chunk in full.chunks(CHUNK) {
        meter.spend(chunk.len()).await;
        for &event in chunk {
            if is_power_event(graph.event(EventIdx(event))) {
                stack.push(event);
            }
        }
        while let Some(event) = stack.pop() {
            let flag = &mut flags[event as usize];
            if *flag & POWER_SORTED != 0 {
                continue;
            }
            *flag |= POWER_SORTED;
            members.push(event);
            stack.extend(graph.auth_slice(event).iter().filter(|&&a| flags[a as usize] & FULL_CONFLICTED != 0));
        }
    }
    meter.spend(members.len()).await;

    // Kahn's algorithm over the auth edges inside X, earliest first.
    let local: HashMap<u32, u32> = members.iter().enumerate().map(|(i, &e)| (e, i as u32)).collect();
    let mut pending_auth = vec![0u32; members.len()];
    let mut dependents: Vec<Vec<u32>> = vec![Vec::new(); members.len()];
    for (i, &event) in members.iter().enumerate() {
        for auth in graph.auth_slice(event) {
            if let Some(&a) = local.get(auth) {
                pending_auth[i] += 1;
                dependents[a as usize].push(i as u32);
            }
        }
    }
    let power = |event: u32| sender_power(graph, event);
    let key = |i: u32| {
        let event = graph.event(EventIdx(members[i as usize]));
        Reverse((Reverse(power(members[i as usize])), event.origin_server_ts(), event.event_id(), i))
    };
    let mut ready: BinaryHeap<_> =
        (0..members.len() as u32).filter(|&i| pending_auth[i as usize] == 0).map(key).collect();
    let mut sorted = Vec::with_capacity(members.len());
    while let Some(Reverse((_, _, _, i))) = ready.pop() {
        meter.spend(1).await;
        sorted.push(members[i as usize]);
        for &d in &dependents[i as usize] {
            pending_auth[d as usize] -= 1;
            if pending_auth[d as usize] == 0 {
                ready.push(key(d));
            }
        }
    }
    sorted
}

/// The sender's power level "when looking at their respective auth_events".
fn sender_power<E: Event>(graph: &RoomGraph<E>, event: u32) -> i64 {
    let rules = graph.rules();
    let create_key = graph.key_index(types::CREATE, "");
    let create = match create_key.and_then(|key| graph.auth_event_with_key(event, key)) {
        Some(create) => Some(create),
        None if !rules.create_in_auth_events => graph.create().map(|c| c.0),
        None => None,
    };
    let Some(create) = create else { return 0 };
    let creators = Creators::of(graph.event(EventIdx(create)), rules);
    let pl_key = graph.key_index(types::POWER_LEVELS, "");
    let pl = pl_key.and_then(|key| graph.auth_event_with_key(event, key));
    let content = pl.map(|pl| graph.event(EventIdx(pl)).content());
    let sender = graph.event(EventIdx(event)).sender();
    PowerLevels::new(content, &creators, rules).user(sender)
}

/// Step 3: `events` sorted by the mainline ordering based on `power_levels`
/// (the resolved power levels event, if any).
pub(super) async fn mainline_sorted<E: Event>(
    graph: &RoomGraph<E>,
    events: &[u32],
    power_levels: Option<u32>,
    meter: &Meter,
) -> Vec<u32> {
    let pl_key = graph.key_index(types::POWER_LEVELS, "");
    // Rank of mainline events: the oldest ranks 1 and P0 highest; events with
    // no mainline event (position ∞) rank 0, so ascending rank is the order.
    let mut mainline = Vec::new();
    let mut next = power_levels;
    while let Some(pl) = next {
        mainline.push(pl);
        next = pl_key.and_then(|key| graph.auth_event_with_key(pl, key));
    }
    let len = mainline.len() as u32;
    let mut rank: HashMap<u32, u32> = mainline.iter().enumerate().map(|(i, &pl)| (pl, len - i as u32)).collect();
    let mut keyed = Vec::with_capacity(events.len());
    for chunk in events.chunks(CHUNK) {
        meter.spend(chunk.len()).await;
        for &event in chunk {
            let position = pl_key.map_or(0, |key| mainline_rank(graph, event, key, &mut rank));
            keyed.push((position, event));
        }
    }
    meter.spend(keyed.len()).await;
    keyed.sort_unstable_by(|&(rank_a, a), &(rank_b, b)| {
        let (a, b) = (graph.event(EventIdx(a)), graph.event(EventIdx(b)));
        (rank_a, a.origin_server_ts(), a.event_id()).cmp(&(rank_b, b.origin_server_ts(), b.event_id()))
    });
    keyed.into_iter().map(|(_, event)| event).collect()
}

/// The rank of the closest mainline event among the power levels events
/// reached from `event`'s auth events (`event` itself excluded), memoising
/// the rank of every power levels event passed on the way.
fn mainline_rank<E: Event>(graph: &RoomGraph<E>, event: u32, pl_key: KeyIdx, rank: &mut HashMap<u32, u32>) -> u32 {
    let mut path = Vec::new();
    let mut next = graph.auth_event_with_key(event, pl_key);
    let found = loop {
        let Some(pl) = next else { break 0 };
        if let Some(&known) = rank.get(&pl) {
            break known;
        }
        path.push(pl);
        next = graph.auth_event_with_key(pl, pl_key);
    };
    for pl in path {
        rank.insert(pl, found);
    }
    found
}
