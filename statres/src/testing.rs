//! Test support (feature `test-util`): a plain owned PDU and a room builder
//! that selects auth events, authorises each event against its fork's state,
//! and can fork and index everything it made. Used by this crate's tests and
//! by the benchmark; not for production use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};

use crate::auth::{auth_types_for_event, check_auth, Rejection};
use crate::auth_chain::{EventIdx, RoomGraph};
use crate::event::{server_of, types, Event};
use crate::rules::RoomRules;

/// An owned PDU.
#[derive(Debug, Clone, PartialEq)]
pub struct Pdu {
    pub event_id: String,
    pub room_id: Option<String>,
    pub sender: String,
    pub kind: String,
    pub state_key: Option<String>,
    pub content: Value,
    pub origin_server_ts: u64,
    pub depth: u64,
    pub prev_events: Vec<String>,
    pub auth_events: Vec<String>,
    pub redacts: Option<String>,
    pub rejected: bool,
    pub signed_by: Vec<String>,
}

impl Event for Pdu {
    fn event_id(&self) -> &str {
        &self.event_id
    }
    fn room_id(&self) -> Option<&str> {
        self.room_id.as_deref()
    }
    fn sender(&self) -> &str {
        &self.sender
    }
    fn event_type(&self) -> &str {
        &self.kind
    }
    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }
    fn content(&self) -> &Value {
        &self.content
    }
    fn origin_server_ts(&self) -> u64 {
        self.origin_server_ts
    }
    fn depth(&self) -> u64 {
        self.depth
    }
    fn prev_events(&self) -> impl ExactSizeIterator<Item = &str> {
        self.prev_events.iter().map(String::as_str)
    }
    fn auth_events(&self) -> impl ExactSizeIterator<Item = &str> {
        self.auth_events.iter().map(String::as_str)
    }
    fn redacts(&self) -> Option<&str> {
        self.redacts.as_deref()
    }
    fn rejected(&self) -> bool {
        self.rejected
    }
    fn is_signed_by(&self, server_name: &str) -> bool {
        self.signed_by.iter().any(|s| s == server_name)
    }
}

/// Current state of one fork, by `(type, state_key)`.
pub type State = HashMap<(String, String), Pdu>;

/// One fork of a test room. Forks share the log of every accepted event.
#[derive(Clone)]
pub struct Room {
    pub rules: &'static RoomRules,
    pub room_id: Option<String>,
    pub state: State,
    head: Vec<String>,
    head_depth: u64,
    log: Rc<RefCell<Vec<Pdu>>>,
}

impl Room {
    /// A room of `version` whose `m.room.create` is sent by `creator`, with
    /// extra create `content` merged in.
    pub fn create(version: &str, creator: &str, extra: Value) -> Room {
        let rules = RoomRules::for_version(version).expect("known room version");
        let server = server_of(creator).unwrap_or("example.org");
        let mut content = json!({ "room_version": version });
        if rules.creator_field {
            content["creator"] = json!(creator);
        }
        if let (Some(content), Some(extra)) = (content.as_object_mut(), extra.as_object()) {
            content.extend(extra.clone());
        }
        let room_id = rules.create_in_auth_events.then(|| format!("!room:{server}"));
        let mut room =
            Room { rules, room_id, state: State::new(), head: Vec::new(), head_depth: 0, log: Rc::default() };
        let create = room.draft(creator, types::CREATE, Some(""), content);
        room.room_id.get_or_insert_with(|| format!("!{}", &create.event_id[1..]));
        room.accept(create);
        room
    }

    /// An event from `sender` on this fork with auth events selected from
    /// its state; not yet sent.
    pub fn draft(&self, sender: &str, kind: &str, state_key: Option<&str>, content: Value) -> Pdu {
        let n = self.log.borrow().len();
        let mut pdu = Pdu {
            event_id: format!("${n}:{}", server_of(sender).unwrap_or("example.org")),
            room_id: self.room_id.clone(),
            sender: sender.to_owned(),
            kind: kind.to_owned(),
            state_key: state_key.map(str::to_owned),
            content,
            origin_server_ts: n as u64,
            depth: self.head_depth + 1,
            prev_events: self.head.clone(),
            auth_events: Vec::new(),
            redacts: None,
            rejected: false,
            signed_by: server_of(sender).into_iter().map(str::to_owned).collect(),
        };
        pdu.auth_events = auth_types_for_event(self.rules, &pdu)
            .into_iter()
            .filter_map(|(kind, key)| self.state.get(&(kind.to_owned(), key.to_owned())))
            .map(|ev| ev.event_id.clone())
            .collect();
        pdu
    }

    /// Authorises `pdu` against this fork's state and, if allowed, appends it.
    pub fn send_pdu(&mut self, pdu: Pdu) -> Result<String, Rejection> {
        check_auth(self.rules, &pdu, &self.state)?;
        Ok(self.accept(pdu))
    }

    /// Drafts and sends a state event.
    pub fn send(&mut self, sender: &str, kind: &str, state_key: &str, content: Value) -> Result<String, Rejection> {
        let pdu = self.draft(sender, kind, Some(state_key), content);
        self.send_pdu(pdu)
    }

    /// Sends a membership event of `membership` from `sender` about `target`.
    pub fn member(&mut self, sender: &str, target: &str, membership: &str) -> Result<String, Rejection> {
        self.send(sender, types::MEMBER, target, json!({ "membership": membership }))
    }

    fn accept(&mut self, pdu: Pdu) -> String {
        let id = pdu.event_id.clone();
        if let Some(key) = &pdu.state_key {
            self.state.insert((pdu.kind.clone(), key.clone()), pdu.clone());
        }
        self.head = vec![id.clone()];
        self.head_depth = pdu.depth;
        self.log.borrow_mut().push(pdu);
        id
    }

    /// Merges the heads of `other` into this fork's next event's prev events.
    pub fn merge_heads(&mut self, other: &Room) {
        self.head.extend(other.head.iter().cloned());
        self.head_depth = self.head_depth.max(other.head_depth);
    }

    /// Every accepted event of every fork, in creation order.
    pub fn log(&self) -> Vec<Pdu> {
        self.log.borrow().clone()
    }

    /// The auth-chain index of every event of every fork.
    pub fn graph(&self) -> RoomGraph<Pdu> {
        let mut graph = RoomGraph::new(self.rules);
        for pdu in self.log.borrow().iter() {
            graph.insert(pdu.clone()).expect("log is in auth order");
        }
        graph
    }

    /// This fork's state as indices of `graph`.
    pub fn state_indices(&self, graph: &RoomGraph<Pdu>) -> Vec<EventIdx> {
        let mut set: Vec<EventIdx> =
            self.state.values().map(|pdu| graph.index_of(&pdu.event_id).expect("indexed")).collect();
        set.sort_unstable();
        set
    }

    /// The event ID in this fork's state for a key.
    pub fn state_id(&self, kind: &str, state_key: &str) -> Option<&str> {
        self.state.get(&(kind.to_owned(), state_key.to_owned())).map(|pdu| pdu.event_id.as_str())
    }
}

/// Replaces a few entries of a state set with older events of the same key,
/// as a state set obtained by partial synchronisation may hold (the inputs
/// MSC4297's problems A and B are about).
pub fn make_stale(graph: &RoomGraph<Pdu>, set: &mut [EventIdx], rng: &mut Rng) {
    for _ in 0..1 + rng.below(3) {
        let slot = rng.below(set.len());
        let key = graph.key_of(set[slot]);
        let older: Vec<EventIdx> = (0..set[slot].0).map(EventIdx).filter(|&idx| graph.key_of(idx) == key).collect();
        if !older.is_empty() {
            set[slot] = older[rng.below(older.len())];
        }
    }
}

/// A resolved state as `(type, state_key) -> event ID`.
pub fn named_state(graph: &RoomGraph<Pdu>, state: &[EventIdx]) -> HashMap<(String, String), String> {
    state
        .iter()
        .map(|&idx| {
            let pdu = graph.event(idx);
            ((pdu.kind.clone(), pdu.state_key.clone().unwrap_or_default()), pdu.event_id.clone())
        })
        .collect()
}

/// A small deterministic generator (splitmix64) so tests and benchmarks
/// build the same rooms from a seed without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
}

/// User `i` of generated rooms, spread over three servers.
pub fn user(i: usize) -> String {
    format!("@u{i}:s{}.example", i % 3)
}

/// The shape of a generated room.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Users joined before the forks start (user 0 is the creator).
    pub members: usize,
    /// Of which the first `moderators` get a power level.
    pub moderators: usize,
    /// Number of forks (state sets to resolve).
    pub forks: usize,
    /// Random actions spread over the forks; rejected ones are dropped.
    pub actions: usize,
}

/// A room whose forks branch off each other at random points and each do
/// random joins, leaves, kicks, bans, invites, power level, join rule and
/// topic changes, each authorised against its own fork.
pub fn random_forks(version: &str, seed: u64, shape: Shape) -> Vec<Room> {
    let mut rng = Rng::new(seed);
    let creator = user(0);
    let mut room = Room::create(version, &creator, json!({}));
    room.member(&creator, &creator, "join").expect("creator joins");
    room.send(&creator, types::JOIN_RULES, "", json!({ "join_rule": "public" })).expect("join rules");
    let mut users = serde_json::Map::new();
    for i in 1..shape.moderators.min(shape.members) {
        let level = [25, 50, 75, 100][rng.below(4)];
        users.insert(user(i), json!(level));
    }
    if !room.rules.privileged_creators {
        users.insert(creator.clone(), json!(100));
    }
    room.send(&creator, types::POWER_LEVELS, "", json!({ "users": users })).expect("power levels");
    for i in 1..shape.members {
        room.member(&user(i), &user(i), "join").expect("public join");
    }
    // Forks branch off at random points, so state sets share histories of
    // different lengths.
    let fork_points: Vec<usize> = (1..shape.forks).map(|_| rng.below(shape.actions + 1)).collect();
    let mut forks = vec![room];
    let population = shape.members + shape.members / 4 + 2;
    for step in 0..=shape.actions {
        for _ in fork_points.iter().filter(|&&point| point == step) {
            let parent = rng.below(forks.len());
            forks.push(forks[parent].clone());
        }
        if step == shape.actions {
            break;
        }
        let fork = rng.below(forks.len());
        let draft = random_draft(&forks[fork], &mut rng, population, shape.moderators.max(1));
        // Rejected actions are expected and simply not part of the room.
        let _ = forks[fork].send_pdu(draft);
    }
    forks
}

/// A random state event on `room`, authorised or not: a membership change,
/// power levels, join rules, topic or a per-user status, from one of the first `moderators`
/// users or from anyone among `population`.
pub fn random_draft(room: &Room, rng: &mut Rng, population: usize, moderators: usize) -> Pdu {
    let actor = user(rng.below(moderators));
    let someone = user(rng.below(population));
    let member = |sender: &str, target: &str, membership: &str| {
        room.draft(sender, types::MEMBER, Some(target), json!({ "membership": membership }))
    };
    match rng.below(12) {
        0 => member(&actor, &someone, "ban"),
        1 => member(&actor, &someone, "leave"),
        2 => member(&someone, &someone, "leave"),
        3 => member(&actor, &someone, "invite"),
        4 | 5 => member(&someone, &someone, "join"),
        6 | 7 => {
            let mut content = room
                .state
                .get(&(types::POWER_LEVELS.to_owned(), String::new()))
                .map_or_else(|| json!({}), |pl| pl.content.clone());
            let target = user(rng.below(moderators * 2));
            if !room.rules.privileged_creators || target != user(0) {
                let level = [0, 25, 50, 75][rng.below(4)];
                content["users"][target] = json!(level);
            }
            room.draft(&actor, types::POWER_LEVELS, Some(""), content)
        }
        8 => {
            let rule = ["public", "invite", "knock", "restricted", "knock_restricted"][rng.below(5)];
            room.draft(&actor, types::JOIN_RULES, Some(""), json!({ "join_rule": rule }))
        }
        9 => member(&someone, &someone, "knock"),
        10 => room.draft(&actor, "org.example.status", Some(&actor), json!({ "n": rng.next_u64() })),
        _ => room.draft(&someone, "m.room.topic", Some(""), json!({ "topic": format!("{}", rng.next_u64()) })),
    }
}

/// A Matrix-HQ-shaped room: `members` joined users (with one other state
/// event per hundred members, so memberships are 99% of the state), then two
/// forks that each make `conflicted / 2` state changes — kicks, bans, leaves,
/// joins, topic and widget changes — with a power levels change every 20th.
pub fn hq_forks(version: &str, members: usize, conflicted: usize) -> Vec<Room> {
    let mut rng = Rng::new(members as u64 ^ conflicted as u64);
    let moderators = 20;
    let mut room = random_forks(version, 1, Shape { members: moderators, moderators, forks: 1, actions: 0 }).remove(0);
    let creator = user(0);
    for i in moderators..members {
        room.member(&user(i), &user(i), "join").expect("public join");
        if i % 100 == 0 {
            room.send(&creator, "org.example.widget", &format!("w{i}"), json!({ "n": i })).expect("widget");
        }
    }
    let mut forks = vec![room.clone(), room];
    for (f, fork) in forks.iter_mut().enumerate() {
        let mut made = 0;
        while made < conflicted / 2 {
            let moderator = user(rng.below(moderators));
            let member = user(moderators + rng.below(members - moderators));
            let sent = if made % 20 == 0 {
                let mut content = fork.state[&(types::POWER_LEVELS.to_owned(), String::new())].content.clone();
                let level = [0, 10, 20][rng.below(3)];
                content["users"][&member] = json!(level);
                fork.send(&creator, types::POWER_LEVELS, "", content)
            } else {
                match rng.below(6) {
                    0 => fork.member(&moderator, &member, "leave"),
                    1 => fork.member(&moderator, &member, "ban"),
                    2 => fork.member(&member, &member, "leave"),
                    3 => fork.member(
                        &user(members + f * conflicted + made),
                        &user(members + f * conflicted + made),
                        "join",
                    ),
                    4 => fork.send(&moderator, "m.room.topic", "", json!({ "topic": format!("{f}/{made}") })),
                    _ => fork.send(&moderator, "org.example.widget", &format!("f{f}-{made}"), json!({})),
                }
            };
            made += usize::from(sent.is_ok());
        }
    }
    forks
}
