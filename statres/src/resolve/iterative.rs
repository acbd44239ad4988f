//! The *iterative auth checks algorithm* (state resolution v2,
//! "Definitions"): apply each event to the state if the authorisation rules
//! allow it against that state, falling back to the event's own (accepted)
//! auth events for keys the state lacks.

use super::budget::Meter;
use super::conflicted::NONE;
use crate::auth::{check_auth, StateView};
use crate::auth_chain::{EventIdx, RoomGraph};
use crate::event::{types, Event};

/// Runs the iterative auth checks of `events`, in order, over `state`
/// (per key index: event index or `NONE`).
pub(super) async fn iterative_auth_checks<E: Event>(
    graph: &RoomGraph<E>,
    events: &[u32],
    state: &mut [u32],
    meter: &Meter,
) {
    for &event in events {
        meter.spend(1).await;
        let Some(key) = graph.key_of(EventIdx(event)) else { continue };
        if is_authorised(graph, state, event, true) {
            state[key.0 as usize] = event;
        }
    }
}

/// Whether the auth rules allow `event` against `state` (per key index: event
/// index or `NONE`); with `fall_back_to_auth_events`, keys missing from the
/// state are taken from the event's own accepted auth events (v2).
pub(super) fn is_authorised<E: Event>(
    graph: &RoomGraph<E>,
    state: &[u32],
    event: u32,
    fall_back_to_auth_events: bool,
) -> bool {
    let view = View { graph, state, event, fall_back_to_auth_events };
    check_auth(graph.rules(), graph.event(EventIdx(event)), &view).is_ok()
}

/// The state an event is checked against during the iterative auth checks.
struct View<'a, E> {
    graph: &'a RoomGraph<E>,
    state: &'a [u32],
    event: u32,
    fall_back_to_auth_events: bool,
}

impl<E: Event> StateView<E> for View<'_, E> {
    fn get(&self, event_type: &str, state_key: &str) -> Option<&E> {
        let graph = self.graph;
        let key = graph.key_index(event_type, state_key)?;
        let in_state = self.state[key.0 as usize];
        let found = if in_state != NONE {
            Some(in_state)
        } else if !self.fall_back_to_auth_events {
            None
        } else {
            let from_auth =
                graph.auth_event_with_key(self.event, key).filter(|&auth| !graph.event(EventIdx(auth)).rejected());
            match from_auth {
                // v12: the create event is implied by the room ID, not cited.
                None if event_type == types::CREATE && !graph.rules().create_in_auth_events => {
                    graph.create().map(|create| create.0)
                }
                other => other,
            }
        };
        found.map(|event| graph.event(EventIdx(event)))
    }
}
