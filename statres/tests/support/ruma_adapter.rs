//! Runs ruma-state-res (a dev-dependency, used only as an oracle and as the
//! benchmark baseline) on rooms made by `tessera_statres::testing`. Shared by
//! the differential tests and the side-by-side benchmark (`#[path]` include).
//!
//! Auth chains and the conflicted state subgraph, which ruma takes as inputs,
//! are computed here naively over event-ID strings, independently of
//! tessera's index.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ruma_common::{
    EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId,
};
use ruma_events::{StateEventType, TimelineEventType};
use ruma_state_res::utils::event_id_set::EventIdSet;
use ruma_state_res::StateMap;
use serde_json::value::RawValue;
use tessera_statres::testing::Pdu;

struct Inner {
    id: OwnedEventId,
    room_id: Option<OwnedRoomId>,
    sender: OwnedUserId,
    ts: MilliSecondsSinceUnixEpoch,
    kind: TimelineEventType,
    content: Box<RawValue>,
    state_key: Option<String>,
    prev: Vec<OwnedEventId>,
    auth: Vec<OwnedEventId>,
    redacts: Option<OwnedEventId>,
}

/// A PDU as ruma-state-res reads it.
#[derive(Clone)]
pub struct RumaPdu(Arc<Inner>);

impl ruma_state_res::Event for RumaPdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &OwnedEventId {
        &self.0.id
    }
    fn room_id(&self) -> Option<&RoomId> {
        self.0.room_id.as_deref()
    }
    fn sender(&self) -> &UserId {
        &self.0.sender
    }
    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.0.ts
    }
    fn event_type(&self) -> &TimelineEventType {
        &self.0.kind
    }
    fn content(&self) -> &RawValue {
        &self.0.content
    }
    fn state_key(&self) -> Option<&str> {
        self.0.state_key.as_deref()
    }
    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.0.prev.iter())
    }
    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &OwnedEventId> + '_> {
        Box::new(self.0.auth.iter())
    }
    fn redacts(&self) -> Option<&OwnedEventId> {
        self.0.redacts.as_ref()
    }
    fn rejected(&self) -> bool {
        false
    }
}

/// The same PDU as ruma reads it.
pub fn convert(pdu: &Pdu) -> RumaPdu {
    let id = |s: &str| EventId::parse(s).expect("event ID");
    RumaPdu(Arc::new(Inner {
        id: id(&pdu.event_id),
        room_id: pdu.room_id.as_deref().map(|r| RoomId::parse(r).expect("room ID")),
        sender: UserId::parse(pdu.sender.as_str()).expect("user ID"),
        ts: MilliSecondsSinceUnixEpoch(pdu.origin_server_ts.try_into().expect("timestamp")),
        kind: TimelineEventType::from(pdu.kind.as_str()),
        content: serde_json::value::to_raw_value(&pdu.content).expect("content"),
        state_key: pdu.state_key.clone(),
        prev: pdu.prev_events.iter().map(|e| id(e)).collect(),
        auth: pdu.auth_events.iter().map(|e| id(e)).collect(),
        redacts: pdu.redacts.as_deref().map(id),
    }))
}

/// Everything ruma's `resolve` takes, prepared ahead (not part of a timing).
pub struct RumaInput {
    version: RoomVersionId,
    events: HashMap<OwnedEventId, RumaPdu>,
    state_maps: Vec<StateMap<OwnedEventId>>,
    auth_chains: Vec<HashSet<OwnedEventId>>,
    subgraph: HashSet<OwnedEventId>,
}

impl RumaInput {
    /// `state_sets` are lists of event IDs of `log`'s events.
    pub fn new(version: &str, log: &[Pdu], state_sets: &[Vec<String>]) -> RumaInput {
        let events: HashMap<OwnedEventId, RumaPdu> =
            log.iter().map(convert).map(|pdu| (pdu.0.id.clone(), pdu)).collect();
        let state_maps: Vec<StateMap<OwnedEventId>> = state_sets
            .iter()
            .map(|set| {
                set.iter()
                    .map(|id| {
                        let pdu = &events[&*EventId::parse(id.as_str()).unwrap()].0;
                        let key = (StateEventType::from(pdu.kind.to_string()), pdu.state_key.clone().unwrap());
                        (key, pdu.id.clone())
                    })
                    .collect()
            })
            .collect();
        let auth_chains = state_maps.iter().map(|map| auth_chain(&events, map.values())).collect();
        let subgraph = conflicted_subgraph(&events, &state_maps);
        RumaInput { version: RoomVersionId::try_from(version).unwrap(), events, state_maps, auth_chains, subgraph }
    }

    /// Runs ruma's state resolution; `(type, state_key) -> event ID`.
    pub fn resolve(&self) -> HashMap<(String, String), String> {
        let resolved = self.resolve_prepared(self.auth_chain_sets());
        resolved.into_iter().map(|((kind, key), id)| ((kind.to_string(), key), id.to_string())).collect()
    }

    /// The auth chain sets ruma consumes, built outside any timing.
    pub fn auth_chain_sets(&self) -> Vec<EventIdSet<OwnedEventId>> {
        self.auth_chains.iter().map(|chain| chain.iter().cloned().collect()).collect()
    }

    /// Only ruma's `resolve` call itself.
    pub fn resolve_prepared(&self, auth_chains: Vec<EventIdSet<OwnedEventId>>) -> StateMap<OwnedEventId> {
        let rules = self.version.rules().expect("known version");
        ruma_state_res::resolve(
            &rules.authorization,
            rules.state_res.v2_rules().expect("v2 rules"),
            &self.state_maps,
            auth_chains,
            |id| self.events.get(id).cloned(),
            |_| Some(self.subgraph.iter().cloned().collect()),
        )
        .expect("ruma resolves")
    }
}

fn auth_chain<'a>(
    events: &HashMap<OwnedEventId, RumaPdu>,
    starts: impl Iterator<Item = &'a OwnedEventId>,
) -> HashSet<OwnedEventId> {
    let mut chain = HashSet::new();
    let mut stack: Vec<&OwnedEventId> = starts.flat_map(|id| events[id].0.auth.iter()).collect();
    while let Some(id) = stack.pop() {
        if chain.insert(id.clone()) {
            stack.extend(events[id].0.auth.iter());
        }
    }
    chain
}

/// Events on auth paths between two conflicted events, endpoints included.
fn conflicted_subgraph(
    events: &HashMap<OwnedEventId, RumaPdu>,
    state_maps: &[StateMap<OwnedEventId>],
) -> HashSet<OwnedEventId> {
    let keys: HashSet<_> = state_maps.iter().flat_map(|m| m.keys()).collect();
    let conflicted: HashSet<OwnedEventId> = keys
        .into_iter()
        .filter(|key| {
            let first = state_maps[0].get(*key);
            first.is_none() || state_maps.iter().any(|m| m.get(*key) != first)
        })
        .flat_map(|key| state_maps.iter().filter_map(move |m| m.get(key).cloned()))
        .collect();
    // Depth-first search remembering, per event, whether it reaches a
    // conflicted event through auth edges.
    fn reaches(
        id: &OwnedEventId,
        events: &HashMap<OwnedEventId, RumaPdu>,
        conflicted: &HashSet<OwnedEventId>,
        memo: &mut HashMap<OwnedEventId, bool>,
    ) -> bool {
        if let Some(&known) = memo.get(id) {
            return known;
        }
        let mut result = false;
        for auth in &events[id].0.auth {
            let via = reaches(auth, events, conflicted, memo);
            result |= conflicted.contains(auth) || via;
        }
        memo.insert(id.clone(), result);
        result
    }
    let mut memo = HashMap::new();
    let below_conflicted = auth_chain(events, conflicted.iter());
    let mut subgraph = conflicted.clone();
    for id in below_conflicted {
        if reaches(&id, events, &conflicted, &mut memo) {
            subgraph.insert(id);
        }
    }
    subgraph
}
