//! Differential tests against ruma-state-res.
//!
//! State resolution: on randomly generated room DAGs (forks off forks with
//! joins, knocks, leaves, kicks, bans, invites, power level, join rule and
//! topic changes, some state sets made stale) both must resolve every case to
//! the identical state, for v2 (rooms 2–11) and v2.1 (room 12).
//!
//! Authorisation rules: random events of those kinds (allowed and not) from
//! random senders, in every room version both implement (2–12), must get the
//! same verdict from both.

mod support;

use support::ruma_adapter::RumaInput;
use support::ruma_auth::ruma_allows;
use tessera_statres::testing::{make_stale, named_state, random_draft, random_forks, user, Rng, Shape};
use tessera_statres::{check_auth, resolve, EventIdx, RoomRules};

fn compare(version: &str, seed: u64, shape: Shape) -> usize {
    let forks = random_forks(version, seed, shape);
    let graph = forks[0].graph();
    let mut sets: Vec<Vec<EventIdx>> = forks.iter().map(|fork| fork.state_indices(&graph)).collect();
    if seed % 2 == 1 {
        make_stale(&graph, &mut sets[1], &mut Rng::new(seed ^ 0x5eed));
    }
    let ours = named_state(&graph, &resolve(&graph, &sets));
    let id_sets: Vec<Vec<String>> =
        sets.iter().map(|set| set.iter().map(|&idx| graph.event(idx).event_id.clone()).collect()).collect();
    let theirs = RumaInput::new(version, &forks[0].log(), &id_sets).resolve();
    assert_eq!(ours, theirs, "room v{version}, seed {seed}, {shape:?}");
    let distinct: std::collections::HashSet<_> = sets.iter().flatten().collect();
    distinct.len() - sets[0].len()
}

fn run(version: &str, cases: u64) {
    let mut conflicts = 0;
    for seed in 0..cases {
        let shape = Shape {
            members: 5 + (seed as usize * 7) % 30,
            moderators: 2 + (seed as usize) % 5,
            forks: 2 + (seed as usize) % 3,
            actions: 10 + (seed as usize * 13) % 60,
        };
        conflicts += compare(version, seed, shape);
    }
    assert!(conflicts > cases as usize, "generator made too few conflicts to test anything: {conflicts}");
}

#[test]
fn v2_resolution_matches_ruma_on_random_dags_room_v11() {
    run("11", 120);
}

#[test]
fn v2_resolution_matches_ruma_on_random_dags_room_v6() {
    run("6", 60);
}

#[test]
fn v2_1_resolution_matches_ruma_on_random_dags_room_v12() {
    run("12", 120);
}

#[test]
fn auth_verdicts_match_ruma_on_random_events_in_every_version() {
    for rules in RoomRules::all().iter().filter(|r| r.id != "1") {
        let v = rules.id;
        let (mut accepted, mut rejected) = (0, 0);
        for seed in 0..6 {
            let shape = Shape { members: 12, moderators: 4, forks: 1, actions: 0 };
            let mut room = random_forks(v, seed, shape).remove(0);
            let mut rng = Rng::new(seed * 31 + 7);
            for _ in 0..150 {
                let mut draft = random_draft(&room, &mut rng, 20, 4);
                // Restricted joins name an authoriser that signed the event.
                if draft.kind == "m.room.member" && rng.percent(30) {
                    let via = user(rng.below(6));
                    draft.signed_by.push(via.split_once(':').unwrap().1.to_owned());
                    draft.content["join_authorised_via_users_server"] = via.into();
                }
                let ours = check_auth(rules, &draft, &room.state);
                let theirs = ruma_allows(v, &draft, &room.state);
                assert_eq!(ours.is_ok(), theirs.is_ok(), "v{v}: ours {ours:?}, ruma {theirs:?} for {draft:#?}");
                if room.send_pdu(draft).is_ok() {
                    accepted += 1;
                } else {
                    rejected += 1;
                }
            }
        }
        assert!(accepted > 100 && rejected > 100, "v{v}: {accepted} accepted, {rejected} rejected");
    }
}
