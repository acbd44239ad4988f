//! The sets state resolution v2 and v2.1 work on ("Definitions"): the
//! unconflicted state map, the conflicted state set, the auth difference,
//! the conflicted state subgraph (v2.1) and their union, the full conflicted
//! set. All of it on dense indices with one flag byte per event.

use super::budget::{Meter, CHUNK};
use crate::auth_chain::{EventIdx, Marks, RoomGraph};
use crate::event::Event;

pub(super) const NONE: u32 = u32::MAX;

/// Per-event flag bits.
pub(super) const CONFLICTED: u8 = 1;
pub(super) const FULL_CONFLICTED: u8 = 2;
pub(super) const POWER_SORTED: u8 = 4;
const REACHES_CONFLICTED: u8 = 8;

/// The state sets split by key.
pub(super) struct Split {
    /// Per key: the event in every state set, or `NONE` if the key is conflicted.
    pub unconflicted: Vec<u32>,
    /// The conflicted state set, each event once.
    pub conflicted: Vec<u32>,
}

/// Splits the state sets into the unconflicted state map and the conflicted
/// state set, flagging conflicted events.
pub(super) async fn split<E: Event, S: AsRef<[EventIdx]>>(
    graph: &RoomGraph<E>,
    sets: &[S],
    flags: &mut [u8],
    meter: &Meter,
) -> Split {
    let keys = graph.key_count();
    let mut value = vec![NONE; keys];
    let mut count = vec![0u32; keys];
    for (i, set) in sets.iter().enumerate() {
        for chunk in set.as_ref().chunks(CHUNK) {
            meter.spend(chunk.len()).await;
            for &EventIdx(event) in chunk {
                let Some(key) = state_key(graph, event) else { continue };
                if i == 0 {
                    value[key] = event;
                    count[key] = 1;
                } else if value[key] == event && count[key] == i as u32 {
                    count[key] += 1;
                }
            }
        }
    }
    let everywhere = sets.len() as u32;
    let mut conflicted = Vec::new();
    for set in sets {
        for chunk in set.as_ref().chunks(CHUNK) {
            meter.spend(chunk.len()).await;
            for &EventIdx(event) in chunk {
                let Some(key) = state_key(graph, event) else { continue };
                if count[key] != everywhere && flags[event as usize] & CONFLICTED == 0 {
                    flags[event as usize] |= CONFLICTED;
                    conflicted.push(event);
                }
            }
        }
    }
    for (key, event) in value.iter_mut().enumerate() {
        if count[key] != everywhere {
            *event = NONE;
        }
    }
    Split { unconflicted: value, conflicted }
}

/// The key index of a state event, `None` for a message event.
pub(super) fn state_key<E: Event>(graph: &RoomGraph<E>, event: u32) -> Option<usize> {
    Some(graph.raw_key(event)).filter(|&key| key != crate::auth_chain::NO_KEY).map(|key| key as usize)
}

/// The full conflicted set: conflicted state set ∪ auth difference, plus the
/// conflicted state subgraph when `with_subgraph` (v2.1). Flags its members
/// `FULL_CONFLICTED` and returns them.
///
/// Auth difference without materialising chains: the full auth chain of set
/// `i` is chain(unconflicted) ∪ chain(conflicted events of `i`), and everything
/// in chain(unconflicted) is in every set's chain. So an event is in the auth
/// difference iff some but not all sets' conflicted events reach it and no
/// unconflicted event does.
pub(super) async fn full_conflicted_set<E: Event, S: AsRef<[EventIdx]>>(
    graph: &RoomGraph<E>,
    sets: &[S],
    split: &Split,
    with_subgraph: bool,
    flags: &mut [u8],
    meter: &Meter,
) -> Vec<u32> {
    let mut marks = Marks::new(graph.len());
    let mut reached_by = vec![0u32; graph.len()];
    let mut touched = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        let starts = set.as_ref().iter().map(|e| e.0).filter(|&e| flags[e as usize] & CONFLICTED != 0);
        walk(graph, &mut marks, starts, i as u32 + 1, 0, meter, |event| {
            if reached_by[event as usize] == 0 {
                touched.push(event);
            }
            reached_by[event as usize] += 1;
        })
        .await;
    }
    // Only events some but not all sets reach can be in the auth difference,
    // and only unconflicted paths down to the shallowest of them matter.
    let unconflicted_stamp = sets.len() as u32 + 1;
    let in_some_chains = touched.iter().filter(|&&e| reached_by[e as usize] != sets.len() as u32);
    if let Some(floor) = in_some_chains.map(|&e| graph.depth(e)).min() {
        let unconflicted = split.unconflicted.iter().copied().filter(|&e| e != NONE);
        walk(graph, &mut marks, unconflicted, unconflicted_stamp, floor, meter, |_| {}).await;
    }

    let mut full: Vec<u32> = split.conflicted.clone();
    for &event in &split.conflicted {
        flags[event as usize] |= FULL_CONFLICTED;
    }
    let in_every_chain =
        |event: u32| reached_by[event as usize] == sets.len() as u32 || marks.get(event) == unconflicted_stamp;
    if with_subgraph {
        // Auth events have smaller depths: in depth order, each event's auth
        // events are decided before it.
        meter.spend(touched.len()).await;
        touched.sort_unstable_by_key(|&event| graph.depth(event));
        for chunk in touched.chunks(CHUNK) {
            meter.spend(chunk.len()).await;
            for &event in chunk {
                let reaches = graph
                    .auth_slice(event)
                    .iter()
                    .any(|&auth| flags[auth as usize] & (CONFLICTED | REACHES_CONFLICTED) != 0);
                if reaches {
                    flags[event as usize] |= REACHES_CONFLICTED;
                }
            }
        }
    }
    for &event in &touched {
        let flag = &mut flags[event as usize];
        let in_subgraph = *flag & REACHES_CONFLICTED != 0;
        if *flag & FULL_CONFLICTED == 0 && (in_subgraph || !in_every_chain(event)) {
            *flag |= FULL_CONFLICTED;
            full.push(event);
        }
    }
    full
}

/// Walks the auth chains of `starts` under `stamp`, down to auth depth
/// `floor`, charging the meter.
async fn walk<E: Event>(
    graph: &RoomGraph<E>,
    marks: &mut Marks,
    starts: impl Iterator<Item = u32>,
    stamp: u32,
    floor: u32,
    meter: &Meter,
    mut visit: impl FnMut(u32),
) {
    marks.clear(floor);
    let mut queued = 0;
    for start in starts {
        marks.push_auth_of(graph, start);
        queued += 1;
        if queued == CHUNK {
            queued = 0;
            drain(graph, marks, stamp, meter, &mut visit).await;
        }
    }
    drain(graph, marks, stamp, meter, &mut visit).await;
}

async fn drain<E: Event>(
    graph: &RoomGraph<E>,
    marks: &mut Marks,
    stamp: u32,
    meter: &Meter,
    visit: &mut impl FnMut(u32),
) {
    loop {
        let done = marks.walk(graph, stamp, CHUNK, &mut *visit);
        meter.spend(CHUNK).await;
        if done {
            break;
        }
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::collections::HashSet;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::testing::{make_stale, random_forks, Pdu, Rng, Shape};

    fn run<T>(future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                return out;
            }
        }
    }

    /// The definitions, computed the slow way: full auth chains per set.
    fn naive_full_conflicted_set(graph: &RoomGraph<Pdu>, sets: &[Vec<EventIdx>]) -> HashSet<u32> {
        let chains: Vec<HashSet<u32>> =
            sets.iter().map(|set| set.iter().flat_map(|&e| graph.auth_chain(e)).map(|e| e.0).collect()).collect();
        let union: HashSet<u32> = chains.iter().flatten().copied().collect();
        let difference = union.iter().copied().filter(|e| !chains.iter().all(|c| c.contains(e)));
        let conflicted = sets.iter().flatten().filter(|e| {
            !sets.iter().all(|set| {
                let key = graph.key_of(**e);
                set.iter().find(|other| graph.key_of(**other) == key) == Some(*e)
            })
        });
        difference.chain(conflicted.map(|e| e.0)).collect()
    }

    #[test]
    fn full_conflicted_set_is_conflicted_state_plus_exact_auth_difference() {
        let meter = Meter::default();
        meter.refill(u64::MAX);
        for seed in 0..40 {
            let shape = Shape { members: 8 + seed as usize, moderators: 4, forks: 2 + seed as usize % 3, actions: 60 };
            let forks = random_forks("11", seed, shape);
            let graph = forks[0].graph();
            let mut sets: Vec<Vec<EventIdx>> = forks.iter().map(|fork| fork.state_indices(&graph)).collect();
            make_stale(&graph, &mut sets[1], &mut Rng::new(seed));
            let mut flags = vec![0u8; graph.len()];
            let split = run(split(&graph, &sets, &mut flags, &meter));
            let full = run(full_conflicted_set(&graph, &sets, &split, false, &mut flags, &meter));
            let full: HashSet<u32> = full.into_iter().collect();
            assert_eq!(full, naive_full_conflicted_set(&graph, &sets), "seed {seed}");
        }
    }
}
