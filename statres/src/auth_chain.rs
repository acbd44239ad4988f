//! The auth-chain index of one room: every known event under a dense `u32`
//! index, its `auth_events` as index lists (one flat array, appended as
//! events arrive), its auth depth, and its state key interned to a dense
//! key index. State resolution's hot loops work on these integers only.
//!
//! Auth chains (v2 state resolution, "Auth chain") are never materialised per
//! event: a walk over the flat edge array with a reusable mark array answers
//! "the union of the auth chains of these events" in time linear in its size.

use std::collections::HashMap;

use crate::event::{types, Event};
use crate::rules::RoomRules;

/// Dense index of an event in a [`RoomGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventIdx(pub u32);

/// Dense index of a `(type, state_key)` pair in a [`RoomGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyIdx(pub u32);

/// Why an event could not be added to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// The event ID is already indexed.
    Duplicate(String),
    /// An auth event is not indexed yet; auth events must be added first.
    MissingAuthEvent(String),
    /// More than `u32::MAX` events or keys.
    Full,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::Duplicate(id) => write!(f, "event {id} is already indexed"),
            GraphError::MissingAuthEvent(id) => write!(f, "auth event {id} is not indexed"),
            GraphError::Full => f.write_str("room graph index is full"),
        }
    }
}

impl std::error::Error for GraphError {}

pub(crate) const NO_KEY: u32 = u32::MAX;

/// The events of one room and their auth DAG, indexed densely.
pub struct RoomGraph<E> {
    rules: &'static RoomRules,
    events: Vec<E>,
    ids: HashMap<Box<str>, u32>,
    /// `auth_edges[auth_start[i]..auth_start[i + 1]]` are event `i`'s auth events.
    auth_start: Vec<u32>,
    auth_edges: Vec<u32>,
    /// Longest auth path to a root; auth events always have a smaller depth.
    depth: Vec<u32>,
    /// Interned state key per event, `NO_KEY` for message events.
    key: Vec<u32>,
    keys: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    key_count: u32,
    create: Option<u32>,
}

impl<E: Event> RoomGraph<E> {
    /// An empty index for a room following `rules`.
    pub fn new(rules: &'static RoomRules) -> Self {
        RoomGraph {
            rules,
            events: Vec::new(),
            ids: HashMap::new(),
            auth_start: vec![0],
            auth_edges: Vec::new(),
            depth: Vec::new(),
            key: Vec::new(),
            keys: HashMap::new(),
            key_count: 0,
            create: None,
        }
    }

    /// Adds an event whose auth events are all indexed already.
    pub fn insert(&mut self, event: E) -> Result<EventIdx, GraphError> {
        if self.ids.contains_key(event.event_id()) {
            return Err(GraphError::Duplicate(event.event_id().to_owned()));
        }
        let idx = u32::try_from(self.events.len()).map_err(|_| GraphError::Full)?;
        let edges_before = self.auth_edges.len();
        let mut depth = 0;
        for auth_id in event.auth_events() {
            let Some(&auth) = self.ids.get(auth_id) else {
                self.auth_edges.truncate(edges_before);
                return Err(GraphError::MissingAuthEvent(auth_id.to_owned()));
            };
            depth = depth.max(self.depth[auth as usize] + 1);
            self.auth_edges.push(auth);
        }
        let key = match event.state_key() {
            Some(state_key) => self.intern_key(event.event_type(), state_key)?,
            None => NO_KEY,
        };
        if event.event_type() == types::CREATE && event.state_key() == Some("") && self.create.is_none() {
            self.create = Some(idx);
        }
        self.auth_start.push(u32::try_from(self.auth_edges.len()).map_err(|_| GraphError::Full)?);
        self.depth.push(depth);
        self.key.push(key);
        self.ids.insert(event.event_id().into(), idx);
        self.events.push(event);
        Ok(EventIdx(idx))
    }

    fn intern_key(&mut self, event_type: &str, state_key: &str) -> Result<u32, GraphError> {
        if let Some(&key) = self.keys.get(event_type).and_then(|by_key| by_key.get(state_key)) {
            return Ok(key);
        }
        let key = self.key_count;
        self.key_count = key.checked_add(1).filter(|&n| n != NO_KEY).ok_or(GraphError::Full)?;
        self.keys.entry(event_type.into()).or_default().insert(state_key.into(), key);
        Ok(key)
    }

    pub fn rules(&self) -> &'static RoomRules {
        self.rules
    }

    /// Number of indexed events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Number of distinct `(type, state_key)` pairs seen.
    pub fn key_count(&self) -> usize {
        self.key_count as usize
    }

    pub fn index_of(&self, event_id: &str) -> Option<EventIdx> {
        self.ids.get(event_id).map(|&idx| EventIdx(idx))
    }

    pub fn event(&self, idx: EventIdx) -> &E {
        &self.events[idx.0 as usize]
    }

    /// The state key index of a state event, `None` for a message event.
    pub fn key_of(&self, idx: EventIdx) -> Option<KeyIdx> {
        Some(self.key[idx.0 as usize]).filter(|&key| key != NO_KEY).map(KeyIdx)
    }

    /// The index of `(event_type, state_key)`, if any event had it.
    pub fn key_index(&self, event_type: &str, state_key: &str) -> Option<KeyIdx> {
        self.keys.get(event_type).and_then(|by_key| by_key.get(state_key)).map(|&key| KeyIdx(key))
    }

    /// The room's `m.room.create` event, once indexed.
    pub fn create(&self) -> Option<EventIdx> {
        self.create.map(EventIdx)
    }

    pub fn auth_events(&self, idx: EventIdx) -> impl ExactSizeIterator<Item = EventIdx> + '_ {
        self.auth_slice(idx.0).iter().map(|&a| EventIdx(a))
    }

    pub(crate) fn auth_slice(&self, idx: u32) -> &[u32] {
        let i = idx as usize;
        &self.auth_edges[self.auth_start[i] as usize..self.auth_start[i + 1] as usize]
    }

    pub(crate) fn depth(&self, idx: u32) -> u32 {
        self.depth[idx as usize]
    }

    pub(crate) fn raw_key(&self, idx: u32) -> u32 {
        self.key[idx as usize]
    }

    /// The auth event of `idx` whose state key index is `key`.
    pub(crate) fn auth_event_with_key(&self, idx: u32, key: KeyIdx) -> Option<u32> {
        self.auth_slice(idx).iter().copied().find(|&a| self.key[a as usize] == key.0)
    }

    /// The auth chain of one event (all events reachable through `auth_events`),
    /// for callers outside state resolution; in no particular order.
    pub fn auth_chain(&self, idx: EventIdx) -> Vec<EventIdx> {
        let mut marks = Marks::new(self.len());
        let mut out = Vec::new();
        marks.push_auth_of(self, idx.0);
        marks.walk(self, 1, usize::MAX, |e| out.push(EventIdx(e)));
        out
    }
}

/// A reusable visited-mark array over a graph's events: each walk uses a new
/// stamp, so nothing is cleared between walks.
pub(crate) struct Marks {
    stamp: Vec<u32>,
    stack: Vec<u32>,
    floor: u32,
}

impl Marks {
    pub fn new(len: usize) -> Self {
        Marks { stamp: vec![0; len], stack: Vec::new(), floor: 0 }
    }

    pub fn get(&self, idx: u32) -> u32 {
        self.stamp[idx as usize]
    }

    /// Forgets any unfinished walk; the next walk skips events of auth depth
    /// below `floor` (none can lead to an event of depth `floor` or more).
    pub fn clear(&mut self, floor: u32) {
        self.stack.clear();
        self.floor = floor;
    }

    /// Adds `start`'s auth events to the walk (`start` itself is visited only
    /// if reachable from another start).
    pub fn push_auth_of<E: Event>(&mut self, graph: &RoomGraph<E>, start: u32) {
        let floor = self.floor;
        self.stack.extend(graph.auth_slice(start).iter().filter(|&&auth| graph.depth(auth) >= floor));
    }

    /// Continues the walk: visits, once each, up to `limit` events reachable
    /// through auth edges that do not carry `stamp` yet, marking them with it.
    /// Returns whether the walk is finished.
    pub fn walk<E: Event>(
        &mut self,
        graph: &RoomGraph<E>,
        stamp: u32,
        limit: usize,
        mut visit: impl FnMut(u32),
    ) -> bool {
        for _ in 0..limit {
            let Some(node) = self.stack.pop() else { return true };
            if self.stamp[node as usize] == stamp {
                continue;
            }
            self.stamp[node as usize] = stamp;
            visit(node);
            for &auth in graph.auth_slice(node) {
                if self.stamp[auth as usize] != stamp && graph.depth(auth) >= self.floor {
                    self.stack.push(auth);
                }
            }
        }
        self.stack.is_empty()
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::testing::{random_forks, Shape};

    #[test]
    fn auth_chain_is_every_event_reachable_through_auth_events() {
        let forks = random_forks("11", 3, Shape { members: 30, moderators: 4, forks: 3, actions: 80 });
        let graph = forks[0].graph();
        for idx in (0..graph.len() as u32).map(EventIdx) {
            let mut naive = HashSet::new();
            let mut stack: Vec<&str> = graph.event(idx).auth_events.iter().map(String::as_str).collect();
            while let Some(id) = stack.pop() {
                if naive.insert(id.to_owned()) {
                    stack.extend(graph.event(graph.index_of(id).unwrap()).auth_events.iter().map(String::as_str));
                }
            }
            let chain: HashSet<String> =
                graph.auth_chain(idx).into_iter().map(|e| graph.event(e).event_id.clone()).collect();
            assert_eq!(chain, naive, "{}", graph.event(idx).event_id);
        }
    }

    #[test]
    fn event_with_unknown_auth_event_is_refused_and_leaves_the_index_unchanged() {
        let forks = random_forks("11", 3, Shape { members: 3, moderators: 1, forks: 1, actions: 0 });
        let log = forks[0].log();
        let mut graph = RoomGraph::new(forks[0].rules);
        let mut orphan = log[1].clone();
        orphan.auth_events.push("$missing:example.org".into());
        graph.insert(log[0].clone()).unwrap();
        assert_eq!(graph.insert(orphan), Err(GraphError::MissingAuthEvent("$missing:example.org".into())));
        assert_eq!(graph.insert(log[0].clone()), Err(GraphError::Duplicate(log[0].event_id.clone())));
        assert_eq!(graph.len(), 1);
        let second = graph.insert(log[1].clone()).unwrap();
        assert_eq!(graph.auth_events(second).len(), log[1].auth_events.len());
    }
}
