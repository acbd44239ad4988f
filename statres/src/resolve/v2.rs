//! State resolution v2 (room versions 2–11, `fragments/v2-state-res.md`,
//! "Algorithm") and v2.1 (room version 12, `content/rooms/v12.md`, "State
//! resolution"): v2.1 starts the first iterative auth checks from an empty
//! state and adds the conflicted state subgraph to the full conflicted set.

use super::budget::Meter;
use super::conflicted::{full_conflicted_set, split, NONE, POWER_SORTED};
use super::iterative::iterative_auth_checks;
use super::ordering::{mainline_sorted, power_events_sorted};
use crate::auth_chain::{EventIdx, RoomGraph};
use crate::event::{types, Event};
use crate::rules::StateResAlgorithm;

pub(super) async fn resolve<E: Event, S: AsRef<[EventIdx]>>(
    graph: &RoomGraph<E>,
    sets: &[S],
    meter: &Meter,
) -> Vec<EventIdx> {
    let v2_1 = graph.rules().state_res == StateResAlgorithm::V2_1;
    let mut flags = vec![0u8; graph.len()];
    let split = split(graph, sets, &mut flags, meter).await;
    let full = full_conflicted_set(graph, sets, &split, v2_1, &mut flags, meter).await;

    // Steps 1 and 2.
    let power_sorted = power_events_sorted(graph, &full, &mut flags, meter).await;
    let mut state = if v2_1 { vec![NONE; graph.key_count()] } else { split.unconflicted.clone() };
    iterative_auth_checks(graph, &power_sorted, &mut state, meter).await;

    // Steps 3 and 4.
    let others: Vec<u32> = full.iter().copied().filter(|&e| flags[e as usize] & POWER_SORTED == 0).collect();
    let power_levels = graph.key_index(types::POWER_LEVELS, "").map(|key| state[key.0 as usize]).filter(|&e| e != NONE);
    let others = mainline_sorted(graph, &others, power_levels, meter).await;
    iterative_auth_checks(graph, &others, &mut state, meter).await;

    // Step 5.
    for (resolved, unconflicted) in state.iter_mut().zip(&split.unconflicted) {
        if *unconflicted != NONE {
            *resolved = *unconflicted;
        }
    }
    state.into_iter().filter(|&e| e != NONE).map(EventIdx).collect()
}
