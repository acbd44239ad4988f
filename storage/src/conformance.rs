//! The conformance suite every backend must pass: the same calls, the same
//! answers. Each backend's tests run [`run_all`] on fresh stores.

use std::future::Future;

use futures_util::future::join_all;

use crate::error::StorageError;
use crate::ops::Op;
use crate::records::{
    AccessTokenRecord, AccountDataRecord, AliasRecord, DestinationRecord, DeviceKeysRecord, DeviceRecord, EventRecord,
    MediaRecord, OneTimeKeyRecord, OutboundRecord, ReceiptRecord, RegistrationTokenRecord, RoomHeadRecord,
    RoomMemberRecord, RoomNid, ServerKeyRecord, StateGroupRecord, StateKeyRecord, ToDeviceRecord, UserRecord,
    UserRoomRecord,
};
use crate::store::{AuthChain, Direction, Store};

/// Runs each named check on a fresh store.
macro_rules! run_checks {
    ($fresh:ident: $($check:ident),* $(,)?) => {
        $(
            eprintln!("conformance: {}", stringify!($check));
            $check(&$fresh().await).await;
        )*
    };
}

/// Runs every check, each on a fresh store from `fresh`. Async, so that
/// each backend's test drives it on the executor the backend needs.
pub(crate) async fn run_all<S: Store, F: Future<Output = S>>(fresh: impl Fn() -> F) {
    run_checks!(fresh:
        user_written_is_read_back_and_replaced,
        devices_of_one_user_exclude_a_user_with_a_longer_id,
        deleting_a_device_revokes_its_tokens_only,
        timeline_pages_both_ways_without_gaps_or_other_rooms,
        outlier_is_stored_but_not_in_the_timeline,
        room_head_is_replaced_as_a_whole,
        global_and_room_account_data_do_not_collide,
        stream_positions_round_trip,
        concurrent_writes_are_all_acknowledged_and_visible,
        state_keys_and_event_numbers_are_listed_by_number,
        event_numbers_are_found_by_id_only_in_their_room,
        auth_chain_follows_the_index_and_says_when_it_cannot,
        state_at_applies_deltas_over_their_snapshot,
        state_at_reports_a_missing_parent_as_corruption,
        membership_change_replaces_both_directions_and_filters_by_membership,
        members_of_one_room_exclude_a_room_with_a_longer_id,
        forgotten_room_leaves_the_users_list_until_the_next_membership,
        receipt_replaces_only_its_own_type_user_and_thread,
        to_device_inbox_pages_in_order_and_forgets_only_acknowledged_messages,
        deleting_a_device_drops_its_to_device_inbox_only,
        device_keys_are_replaced_and_dropped_with_their_device,
        one_time_keys_are_counted_per_algorithm_of_one_device,
        concurrent_claims_never_hand_out_one_key_twice,
        server_keys_are_replaced_per_key_and_listed_per_server,
        destination_retry_state_is_replaced,
        outbound_queue_pages_in_order_and_forgets_only_delivered_items,
        media_metadata_keeps_absent_type_and_name_absent,
        deleted_alias_leaves_no_trace_in_the_rooms_alias_list,
        registration_tokens_lose_their_limits_or_stay_after_deletion,
        unpublished_room_leaves_the_directory,
    );
}

pub(crate) fn user(user_id: &str) -> UserRecord {
    UserRecord {
        user_id: user_id.into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_ts: 1_700_000_000_000,
        deactivated: false,
        is_guest: false,
        is_admin: false,
        displayname: Some("Alice".into()),
        avatar_url: None,
    }
}

fn device(user_id: &str, device_id: &str) -> DeviceRecord {
    DeviceRecord {
        user_id: user_id.into(),
        device_id: device_id.into(),
        display_name: Some("phone".into()),
        last_seen_ts: None,
        last_seen_ip: None,
    }
}

fn token(user_id: &str, device_id: &str) -> AccessTokenRecord {
    AccessTokenRecord { user_id: user_id.into(), device_id: device_id.into(), expires_ts: None }
}

pub(crate) fn event(room: &str, n: u64, pos: Option<u64>) -> EventRecord {
    EventRecord {
        event_id: format!("$e{n}-{room}"),
        room_id: room.into(),
        vshard: 3,
        stream_pos: pos,
        json: format!(r#"{{"type":"m.room.message","content":{{"body":"{n}"}}}}"#).into_bytes(),
    }
}

async fn user_written_is_read_back_and_replaced(s: &impl Store) {
    assert_eq!(s.user(1, "@alice:x").await.unwrap(), None);
    s.write(vec![Op::PutUser { vshard: 1, user: user("@alice:x") }]).await.unwrap();
    assert_eq!(s.user(1, "@alice:x").await.unwrap(), Some(user("@alice:x")));
    let deactivated = UserRecord { deactivated: true, password_hash: None, ..user("@alice:x") };
    s.write(vec![Op::PutUser { vshard: 1, user: deactivated.clone() }]).await.unwrap();
    assert_eq!(s.user(1, "@alice:x").await.unwrap(), Some(deactivated));
    // Rows are filed under their vshard: another vshard does not see them.
    assert_eq!(s.user(2, "@alice:x").await.unwrap(), None);
}

async fn devices_of_one_user_exclude_a_user_with_a_longer_id(s: &impl Store) {
    s.write(vec![
        Op::PutDevice { vshard: 1, device: device("@a:x", "D2") },
        Op::PutDevice { vshard: 1, device: device("@a:x", "D1") },
        Op::PutDevice { vshard: 1, device: device("@a:xy", "D3") },
    ])
    .await
    .unwrap();
    let ids: Vec<String> = s.devices(1, "@a:x").await.unwrap().into_iter().map(|d| d.device_id).collect();
    assert_eq!(ids, ["D1", "D2"]);
    assert_eq!(s.device(1, "@a:xy", "D3").await.unwrap(), Some(device("@a:xy", "D3")));
}

async fn deleting_a_device_revokes_its_tokens_only(s: &impl Store) {
    s.write(vec![
        Op::PutDevice { vshard: 1, device: device("@a:x", "D1") },
        Op::PutDevice { vshard: 1, device: device("@a:x", "D2") },
        Op::PutAccessToken { digest: b"t1".to_vec(), token: token("@a:x", "D1") },
        Op::PutAccessToken { digest: b"t2".to_vec(), token: token("@a:x", "D1") },
        Op::PutAccessToken { digest: b"t3".to_vec(), token: token("@a:x", "D2") },
    ])
    .await
    .unwrap();
    assert_eq!(s.access_token(b"t1").await.unwrap(), Some(token("@a:x", "D1")));
    s.write(vec![Op::DeleteAccessToken { digest: b"t2".to_vec() }]).await.unwrap();
    assert_eq!(s.access_token(b"t2").await.unwrap(), None);
    s.write(vec![Op::DeleteDevice { vshard: 1, user_id: "@a:x".into(), device_id: "D1".into() }]).await.unwrap();
    assert_eq!(s.access_token(b"t1").await.unwrap(), None);
    assert_eq!(s.device(1, "@a:x", "D1").await.unwrap(), None);
    assert_eq!(s.access_token(b"t3").await.unwrap(), Some(token("@a:x", "D2")));
}

async fn timeline_pages_both_ways_without_gaps_or_other_rooms(s: &impl Store) {
    let mut ops: Vec<Op> = (1..=10).map(|n| Op::PutEvent(event("!r:x", n, Some(n * 10)))).collect();
    ops.push(Op::PutEvent(event("!r:xy", 99, Some(55))));
    s.write(ops).await.unwrap();
    let page = |from, dir, limit| async move { s.timeline(3, "!r:x", from, dir, limit).await.unwrap() };
    let positions = |p: Vec<(u64, String)>| p.into_iter().map(|(pos, _)| pos).collect::<Vec<_>>();
    assert_eq!(positions(page(None, Direction::Forward, 3).await), [10, 20, 30]);
    assert_eq!(positions(page(Some(30), Direction::Forward, 3).await), [40, 50, 60]);
    assert_eq!(positions(page(None, Direction::Backward, 2).await), [100, 90]);
    assert_eq!(positions(page(Some(90), Direction::Backward, 100).await), [80, 70, 60, 50, 40, 30, 20, 10]);
    assert_eq!(positions(page(Some(100), Direction::Forward, 5).await), Vec::<u64>::new());
    assert_eq!(positions(page(Some(u64::MAX), Direction::Forward, 5).await), Vec::<u64>::new());
    assert_eq!(page(None, Direction::Forward, 1).await[0].1, "$e1-!r:x");
}

async fn outlier_is_stored_but_not_in_the_timeline(s: &impl Store) {
    s.write(vec![Op::PutEvent(event("!r:x", 1, None))]).await.unwrap();
    assert_eq!(s.event("$e1-!r:x").await.unwrap(), Some(event("!r:x", 1, None)));
    assert!(s.timeline(3, "!r:x", None, Direction::Forward, 10).await.unwrap().is_empty());
}

async fn room_head_is_replaced_as_a_whole(s: &impl Store) {
    assert_eq!(s.room_head(3, "!r:x").await.unwrap(), None);
    let head = |ids: &[&str], depth| RoomHeadRecord {
        room_version: "12".into(),
        forward_extremities: ids.iter().map(|s| s.to_string()).collect(),
        depth,
        state_group: depth * 2,
        chain_len: 3,
        next_state_group: depth * 2 + 1,
        next_event_nid: 7,
        next_state_key_nid: u32::MAX,
    };
    let set = |head| Op::PutRoomHead { vshard: 3, room_id: "!r:x".into(), head };
    s.write(vec![set(head(&["$a", "$b"], 4))]).await.unwrap();
    s.write(vec![set(head(&["$c"], 5))]).await.unwrap();
    assert_eq!(s.room_head(3, "!r:x").await.unwrap(), Some(head(&["$c"], 5)));
    assert_eq!(s.room_head(4, "!r:x").await.unwrap(), None);
}

async fn global_and_room_account_data_do_not_collide(s: &impl Store) {
    let data = |room: Option<&str>, content: &str| AccountDataRecord {
        user_id: "@a:x".into(),
        room_id: room.map(Into::into),
        data_type: "m.tag".into(),
        content: content.as_bytes().to_vec(),
    };
    s.write(vec![
        Op::PutAccountData { vshard: 1, data: data(None, "{}") },
        Op::PutAccountData { vshard: 1, data: data(Some("!r:x"), r#"{"tags":{}}"#) },
    ])
    .await
    .unwrap();
    assert_eq!(s.account_data(1, "@a:x", None, "m.tag").await.unwrap(), Some(data(None, "{}")));
    let room = s.account_data(1, "@a:x", Some("!r:x"), "m.tag").await.unwrap();
    assert_eq!(room, Some(data(Some("!r:x"), r#"{"tags":{}}"#)));
    assert_eq!(s.all_account_data(1, "@a:x").await.unwrap().len(), 2);
}

async fn stream_positions_round_trip(s: &impl Store) {
    assert_eq!(s.stream_position("events-0").await.unwrap(), None);
    s.write(vec![Op::SetStreamPosition { stream: "events-0".into(), pos: 1 << 40 }]).await.unwrap();
    assert_eq!(s.stream_position("events-0").await.unwrap(), Some(1 << 40));
}

async fn concurrent_writes_are_all_acknowledged_and_visible(s: &impl Store) {
    let writes = (0..200u64).map(|n| s.write(vec![Op::PutEvent(event("!busy:x", n, Some(n)))]));
    for result in join_all(writes).await {
        result.unwrap();
    }
    let all = s.timeline(3, "!busy:x", None, Direction::Forward, 1000).await.unwrap();
    assert_eq!(all.len(), 200);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
}

const ROOM: RoomNid = (3 << 48) | 1;

async fn state_keys_and_event_numbers_are_listed_by_number(s: &impl Store) {
    let key = |nid: u32, user: &str| StateKeyRecord { nid, event_type: "m.room.member".into(), state_key: user.into() };
    s.write(vec![
        Op::PutRoomNid { vshard: 3, room_id: "!r:x".into(), room: ROOM },
        Op::PutStateKeys { room: ROOM, keys: vec![key(300, "@c:x"), key(0, "@a:x")] },
        Op::PutStateKeys { room: ROOM + 1, keys: vec![key(1, "@other:x")] },
        Op::PutEventNids { room: ROOM, events: vec![(7, "$seven".into()), (256, "$big".into())] },
    ])
    .await
    .unwrap();
    assert_eq!(s.room_nid(3, "!r:x").await.unwrap(), Some(ROOM));
    assert_eq!(s.room_nid(3, "!r:xy").await.unwrap(), None);
    assert_eq!(s.state_keys(ROOM).await.unwrap(), [key(0, "@a:x"), key(300, "@c:x")]);
    let ids = s.event_ids_of(ROOM, &[256, 8, 7]).await.unwrap();
    assert_eq!(ids, [Some("$big".to_owned()), None, Some("$seven".to_owned())]);
}

async fn event_numbers_are_found_by_id_only_in_their_room(s: &impl Store) {
    let events = vec![(7, "$seven".into()), (300, "$big".into())];
    s.write(vec![Op::PutEventNids { room: ROOM, events }]).await.unwrap();
    let ids = ["$big".to_owned(), "$none".to_owned(), "$seven".to_owned()];
    assert_eq!(s.event_nids_of(ROOM, &ids).await.unwrap(), [Some(300), None, Some(7)]);
    assert_eq!(s.event_nids_of(ROOM + 1, &ids).await.unwrap(), [None, None, None]);
    // Numbered again (a room rejoined starts over from the state it is
    // sent): the newest number answers.
    s.write(vec![Op::PutEventNids { room: ROOM, events: vec![(301, "$seven".into())] }]).await.unwrap();
    assert_eq!(s.event_nids_of(ROOM, &ids[2..]).await.unwrap(), [Some(301)]);
}

async fn auth_chain_follows_the_index_and_says_when_it_cannot(s: &impl Store) {
    // create 0 ← power levels 1 ← alice 2 ← join rules 3 ← bob 4 (his
    // chain also has alice's join), across two rows of the PostgreSQL
    // packing (200).
    let edges = vec![(0, vec![]), (1, vec![0, 2]), (2, vec![0]), (3, vec![0, 1, 2]), (200, vec![0, 1, 3])];
    s.write(vec![Op::PutAuthEvents { room: ROOM, events: edges }]).await.unwrap();
    assert_eq!(s.auth_events_of(ROOM, &[200, 5, 0]).await.unwrap(), [Some(vec![0, 1, 3]), None, Some(vec![])]);
    assert_eq!(s.auth_chain(ROOM, &[200], 10).await.unwrap(), AuthChain::Events(vec![0, 1, 2, 3]));
    assert_eq!(s.auth_chain(ROOM, &[0], 10).await.unwrap(), AuthChain::Events(vec![]));
    assert_eq!(s.auth_chain(ROOM, &[200], 3).await.unwrap(), AuthChain::TooLarge);
    // An event whose auth events were never recorded (stored before the
    // index) cannot be answered from it.
    s.write(vec![Op::PutAuthEvents { room: ROOM, events: vec![(201, vec![200, 9])] }]).await.unwrap();
    assert_eq!(s.auth_chain(ROOM, &[201], 10).await.unwrap(), AuthChain::NotIndexed);
    assert_eq!(s.auth_events_of(ROOM + 1, &[200]).await.unwrap(), [None], "another room's");
}

async fn state_at_applies_deltas_over_their_snapshot(s: &impl Store) {
    let put = |group, parent, entries: &[(u32, u32)]| Op::PutStateGroup {
        room: ROOM,
        group,
        state: StateGroupRecord { parent, entries: entries.to_vec() },
    };
    s.write(vec![
        put(1, None, &[(0, 10), (1, 11), (2, 12)]),
        put(2, Some(1), &[(1, 21), (5, 25)]),
        put(3, Some(2), &[(0, 30)]),
    ])
    .await
    .unwrap();
    assert_eq!(s.state_at(ROOM, 3).await.unwrap().unwrap(), [(0, 30), (1, 21), (2, 12), (5, 25)]);
    assert_eq!(s.state_at(ROOM, 1).await.unwrap().unwrap(), [(0, 10), (1, 11), (2, 12)]);
    assert_eq!(s.state_at(ROOM, 4).await.unwrap(), None);
    assert_eq!(s.state_at(ROOM + 1, 3).await.unwrap(), None);
    assert_eq!(s.state_group(ROOM, 2).await.unwrap().unwrap().parent, Some(1));
}

async fn state_at_reports_a_missing_parent_as_corruption(s: &impl Store) {
    let orphan = StateGroupRecord { parent: Some(99), entries: vec![(0, 1)] };
    s.write(vec![Op::PutStateGroup { room: ROOM, group: 5, state: orphan }]).await.unwrap();
    assert!(matches!(s.state_at(ROOM, 5).await, Err(StorageError::Corrupt { .. })));
}

/// Room `room` on vshard 3, user `user` on vshard 1.
fn membership(room: &str, user: &str, membership: &str, event_id: &str) -> Op {
    Op::PutMembership {
        vshard_room: 3,
        vshard_user: 1,
        room_id: room.into(),
        user_id: user.into(),
        membership: membership.into(),
        event_id: event_id.into(),
    }
}

async fn membership_change_replaces_both_directions_and_filters_by_membership(s: &impl Store) {
    s.write(vec![
        membership("!r:x", "@b:x", "join", "$b1"),
        membership("!r:x", "@a:x", "join", "$a1"),
        membership("!r:x", "@c:x", "invite", "$c1"),
        membership("!s:x", "@a:x", "invite", "$a2"),
    ])
    .await
    .unwrap();
    s.write(vec![membership("!r:x", "@a:x", "leave", "$a3")]).await.unwrap();
    let member = |user: &str, membership: &str, event: &str| RoomMemberRecord {
        user_id: user.into(),
        membership: membership.into(),
        event_id: event.into(),
    };
    let all = s.room_members(3, "!r:x", None).await.unwrap();
    assert_eq!(all, [member("@a:x", "leave", "$a3"), member("@b:x", "join", "$b1"), member("@c:x", "invite", "$c1")]);
    assert_eq!(s.room_members(3, "!r:x", Some("join")).await.unwrap(), [member("@b:x", "join", "$b1")]);
    assert!(s.room_members(3, "!r:x", Some("ban")).await.unwrap().is_empty());
    let room = |room: &str, membership: &str| UserRoomRecord { room_id: room.into(), membership: membership.into() };
    assert_eq!(s.user_rooms(1, "@a:x", None).await.unwrap(), [room("!r:x", "leave"), room("!s:x", "invite")]);
    assert_eq!(s.user_rooms(1, "@a:x", Some("invite")).await.unwrap(), [room("!s:x", "invite")]);
    // Each direction is filed under its own partition only.
    assert!(s.user_rooms(3, "@a:x", None).await.unwrap().is_empty());
    assert!(s.room_members(1, "!r:x", None).await.unwrap().is_empty());
}

async fn forgotten_room_leaves_the_users_list_until_the_next_membership(s: &impl Store) {
    s.write(vec![membership("!r:x", "@a:x", "leave", "$1"), membership("!s:x", "@a:x", "join", "$2")]).await.unwrap();
    let forget = Op::ForgetRoom { vshard_user: 1, user_id: "@a:x".into(), room_id: "!r:x".into() };
    s.write(vec![forget]).await.unwrap();
    let room = |room: &str, membership: &str| UserRoomRecord { room_id: room.into(), membership: membership.into() };
    assert_eq!(s.user_rooms(1, "@a:x", None).await.unwrap(), [room("!s:x", "join")]);
    assert_eq!(s.room_members(3, "!r:x", None).await.unwrap().len(), 1, "the room still knows the leave");
    s.write(vec![membership("!r:x", "@a:x", "join", "$3")]).await.unwrap();
    assert_eq!(s.user_rooms(1, "@a:x", None).await.unwrap(), [room("!r:x", "join"), room("!s:x", "join")]);
}

async fn members_of_one_room_exclude_a_room_with_a_longer_id(s: &impl Store) {
    s.write(vec![membership("!r:x", "@a:x", "join", "$1"), membership("!r:xy", "@b:x", "join", "$2")]).await.unwrap();
    let members = s.room_members(3, "!r:x", None).await.unwrap();
    assert_eq!(members.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(), ["@a:x"]);
    let rooms = s.user_rooms(1, "@b:x", Some("join")).await.unwrap();
    assert_eq!(rooms.iter().map(|r| r.room_id.as_str()).collect::<Vec<_>>(), ["!r:xy"]);
}

async fn receipt_replaces_only_its_own_type_user_and_thread(s: &impl Store) {
    let receipt = |receipt_type: &str, user: &str, thread: Option<&str>, event: &str, ts| ReceiptRecord {
        receipt_type: receipt_type.into(),
        user_id: user.into(),
        thread_id: thread.map(Into::into),
        event_id: event.into(),
        ts,
    };
    let put = |room: &str, receipt| Op::PutReceipt { vshard: 3, room_id: room.into(), receipt };
    s.write(vec![
        put("!r:x", receipt("m.read", "@b:x", None, "$1", 10)),
        put("!r:x", receipt("m.read", "@a:x", None, "$1", 11)),
        put("!r:x", receipt("m.read", "@a:x", Some("main"), "$2", 12)),
        put("!r:x", receipt("m.read.private", "@a:x", None, "$3", 13)),
        put("!r:xy", receipt("m.read", "@a:x", None, "$9", 19)),
    ])
    .await
    .unwrap();
    // A newer unthreaded receipt replaces the unthreaded one only.
    s.write(vec![put("!r:x", receipt("m.read", "@a:x", None, "$4", 14))]).await.unwrap();
    assert_eq!(
        s.receipts(3, "!r:x").await.unwrap(),
        [
            receipt("m.read", "@a:x", None, "$4", 14),
            receipt("m.read", "@a:x", Some("main"), "$2", 12),
            receipt("m.read", "@b:x", None, "$1", 10),
            receipt("m.read.private", "@a:x", None, "$3", 13),
        ]
    );
    assert!(s.receipts(1, "!r:x").await.unwrap().is_empty());
}

fn to_device(device: &str, pos: u64) -> Op {
    Op::PutToDevice { vshard: 1, user_id: "@a:x".into(), device_id: device.into(), message: to_device_message(pos) }
}

fn to_device_message(pos: u64) -> ToDeviceRecord {
    ToDeviceRecord { pos, message: format!(r#"{{"type":"m.room_key_request","n":{pos}}}"#).into_bytes() }
}

async fn to_device_inbox_pages_in_order_and_forgets_only_acknowledged_messages(s: &impl Store) {
    s.write(vec![
        to_device("D1", 300),
        to_device("D1", 5),
        to_device("D1", 7),
        to_device("D1x", 6),
        to_device("D2", 1),
    ])
    .await
    .unwrap();
    let inbox = |device: &'static str, after, limit| async move {
        s.to_device(1, "@a:x", device, after, limit).await.unwrap().into_iter().map(|m| m.pos).collect::<Vec<_>>()
    };
    assert_eq!(inbox("D1", 0, 2).await, [5, 7]);
    assert_eq!(inbox("D1", 7, 10).await, [300]);
    assert_eq!(inbox("D1", u64::MAX, 10).await, Vec::<u64>::new());
    assert_eq!(s.to_device(1, "@a:x", "D1", 0, 1).await.unwrap(), [to_device_message(5)]);
    // The next sync acknowledges what the previous one delivered.
    let ack = |up_to| Op::DeleteToDevice { vshard: 1, user_id: "@a:x".into(), device_id: "D1".into(), up_to };
    s.write(vec![ack(7)]).await.unwrap();
    assert_eq!(inbox("D1", 0, 10).await, [300]);
    assert_eq!(inbox("D1x", 0, 10).await, [6]);
    assert_eq!(inbox("D2", 0, 10).await, [1]);
    s.write(vec![ack(u64::MAX)]).await.unwrap();
    assert_eq!(inbox("D1", 0, 10).await, Vec::<u64>::new());
    assert!(s.to_device(2, "@a:x", "D2", 0, 10).await.unwrap().is_empty());
}

async fn deleting_a_device_drops_its_to_device_inbox_only(s: &impl Store) {
    s.write(vec![to_device("D1", 1), to_device("D1", 2), to_device("D2", 3)]).await.unwrap();
    s.write(vec![Op::DeleteDevice { vshard: 1, user_id: "@a:x".into(), device_id: "D1".into() }]).await.unwrap();
    assert!(s.to_device(1, "@a:x", "D1", 0, 10).await.unwrap().is_empty());
    assert_eq!(s.to_device(1, "@a:x", "D2", 0, 10).await.unwrap(), [to_device_message(3)]);
}

fn device_keys(device: &str, keys: &str) -> DeviceKeysRecord {
    DeviceKeysRecord { user_id: "@a:x".into(), device_id: device.into(), keys: keys.as_bytes().to_vec() }
}

fn one_time_keys(device: &str, keys: &[(&str, &str)]) -> Op {
    Op::PutOneTimeKeys {
        vshard: 1,
        user_id: "@a:x".into(),
        device_id: device.into(),
        keys: keys.iter().map(|&(algorithm, key_id)| one_time_key(algorithm, key_id)).collect(),
    }
}

fn one_time_key(algorithm: &str, key_id: &str) -> OneTimeKeyRecord {
    OneTimeKeyRecord {
        algorithm: algorithm.into(),
        key_id: key_id.into(),
        key: format!(r#"{{"key":"{key_id}"}}"#).into_bytes(),
    }
}

async fn device_keys_are_replaced_and_dropped_with_their_device(s: &impl Store) {
    let put = |keys| Op::PutDeviceKeys { vshard: 1, keys };
    s.write(vec![put(device_keys("D2", "{}")), put(device_keys("D1", "{}")), one_time_keys("D1", &[("curve", "k")])])
        .await
        .unwrap();
    s.write(vec![put(device_keys("D1", r#"{"v":2}"#))]).await.unwrap();
    assert_eq!(s.device_keys(1, "@a:x").await.unwrap(), [device_keys("D1", r#"{"v":2}"#), device_keys("D2", "{}")]);
    assert!(s.device_keys(2, "@a:x").await.unwrap().is_empty());
    s.write(vec![Op::DeleteDevice { vshard: 1, user_id: "@a:x".into(), device_id: "D1".into() }]).await.unwrap();
    assert_eq!(s.device_keys(1, "@a:x").await.unwrap(), [device_keys("D2", "{}")]);
    assert!(s.one_time_key_counts(1, "@a:x", "D1").await.unwrap().is_empty());
}

async fn one_time_keys_are_counted_per_algorithm_of_one_device(s: &impl Store) {
    s.write(vec![
        one_time_keys("D1", &[("signed_curve25519", "A"), ("signed_curve25519", "B"), ("curve25519", "C")]),
        one_time_keys("D1x", &[("signed_curve25519", "D")]),
        // Uploading a key ID again does not add a key.
        one_time_keys("D1", &[("signed_curve25519", "A")]),
    ])
    .await
    .unwrap();
    let counts = s.one_time_key_counts(1, "@a:x", "D1").await.unwrap();
    assert_eq!(counts, [("curve25519".to_owned(), 1), ("signed_curve25519".to_owned(), 2)]);
    assert!(s.one_time_key_counts(1, "@a:x", "D2").await.unwrap().is_empty());
}

async fn concurrent_claims_never_hand_out_one_key_twice(s: &impl Store) {
    let keys =
        [("signed_curve25519", "A"), ("signed_curve25519", "B"), ("signed_curve25519", "C"), ("curve25519", "D")];
    s.write(vec![one_time_keys("D1", &keys)]).await.unwrap();
    // Issued together, so they share a group commit where the backend has one.
    let claims = (0..4).map(|_| s.claim_one_time_key(1, "@a:x", "D1", "signed_curve25519"));
    let mut claimed: Vec<OneTimeKeyRecord> =
        join_all(claims).await.into_iter().filter_map(|claim| claim.unwrap()).collect();
    claimed.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    assert_eq!(claimed, ["A", "B", "C"].map(|id| one_time_key("signed_curve25519", id)));
    assert_eq!(s.one_time_key_counts(1, "@a:x", "D1").await.unwrap(), [("curve25519".to_owned(), 1)]);
    assert_eq!(s.claim_one_time_key(1, "@a:x", "D1", "signed_curve25519").await.unwrap(), None);
}

fn server_key(server: &str, key_id: &str, valid_until_ts: u64) -> ServerKeyRecord {
    ServerKeyRecord {
        server_name: server.into(),
        key_id: key_id.into(),
        public_key: format!("key-{key_id}-{valid_until_ts}"),
        valid_until_ts,
    }
}

async fn server_keys_are_replaced_per_key_and_listed_per_server(s: &impl Store) {
    let put = |keys| Op::PutServerKeys { keys };
    s.write(vec![put(vec![
        server_key("b.x", "ed25519:2", 10),
        server_key("b.x", "ed25519:1", 10),
        server_key("b.xy", "ed25519:1", 10),
    ])])
    .await
    .unwrap();
    s.write(vec![put(vec![server_key("b.x", "ed25519:1", 20)])]).await.unwrap();
    let keys = s.server_keys("b.x").await.unwrap();
    assert_eq!(keys, [server_key("b.x", "ed25519:1", 20), server_key("b.x", "ed25519:2", 10)]);
    assert!(s.server_keys("b").await.unwrap().is_empty());
}

async fn destination_retry_state_is_replaced(s: &impl Store) {
    let state =
        |failure_count, retry_after_ts| DestinationRecord { destination: "b.x".into(), failure_count, retry_after_ts };
    assert_eq!(s.destination("b.x").await.unwrap(), None);
    s.write(vec![Op::PutDestination(state(3, 1_700_000_060_000))]).await.unwrap();
    s.write(vec![Op::PutDestination(state(4, 1_700_000_120_000))]).await.unwrap();
    assert_eq!(s.destination("b.x").await.unwrap(), Some(state(4, 1_700_000_120_000)));
    assert_eq!(s.destination("b.xy").await.unwrap(), None);
}

async fn outbound_queue_pages_in_order_and_forgets_only_delivered_items(s: &impl Store) {
    let item = |pos: u64| OutboundRecord { pos, edu: pos % 2 == 0, body: format!(r#"{{"n":{pos}}}"#).into_bytes() };
    let put = |destination: &str, pos| Op::PutOutbound { destination: destination.into(), item: item(pos) };
    s.write(vec![put("b.x", 300), put("b.x", 1), put("b.x", 2), put("b.xy", 3)]).await.unwrap();
    let queued = |destination: &'static str, after, limit| async move {
        s.outbound(destination, after, limit).await.unwrap().into_iter().map(|i| i.pos).collect::<Vec<_>>()
    };
    assert_eq!(s.outbound("b.x", 0, 2).await.unwrap(), [item(1), item(2)]);
    assert_eq!(queued("b.x", 2, 10).await, [300]);
    assert_eq!(queued("b.x", u64::MAX, 10).await, Vec::<u64>::new());
    s.write(vec![Op::DeleteOutbound { destination: "b.x".into(), up_to: 2 }]).await.unwrap();
    assert_eq!(queued("b.x", 0, 10).await, [300]);
    assert_eq!(queued("b.xy", 0, 10).await, [3]);
}

async fn media_metadata_keeps_absent_type_and_name_absent(s: &impl Store) {
    let media = |media_id: &str, content_type: Option<&str>, upload_name: Option<&str>| MediaRecord {
        media_id: media_id.into(),
        content_type: content_type.map(Into::into),
        upload_name: upload_name.map(Into::into),
        size: 5 << 32,
        user_id: "@a:x".into(),
        created_ts: 1_700_000_000_000,
    };
    assert_eq!(s.media("abc").await.unwrap(), None);
    s.write(vec![
        Op::PutMedia(media("abc", Some("image/png"), Some("cat.png"))),
        Op::PutMedia(media("abd", None, None)),
    ])
    .await
    .unwrap();
    assert_eq!(s.media("abc").await.unwrap(), Some(media("abc", Some("image/png"), Some("cat.png"))));
    assert_eq!(s.media("abd").await.unwrap(), Some(media("abd", None, None)));
}

async fn registration_tokens_lose_their_limits_or_stay_after_deletion(s: &impl Store) {
    let token = |name: &str, uses: Option<u32>, expiry: Option<u64>| RegistrationTokenRecord {
        token: name.into(),
        uses_allowed: uses,
        pending: 1,
        completed: 2,
        expiry_time: expiry,
    };
    let (b, a) = (token("b", Some(3), Some(u64::from(u32::MAX) + 5)), token("a", None, None));
    s.write(vec![Op::PutRegistrationToken(b.clone()), Op::PutRegistrationToken(a.clone())]).await.unwrap();
    assert_eq!(s.registration_token("b").await.unwrap(), Some(b.clone()));
    assert_eq!(s.registration_tokens().await.unwrap(), [a.clone(), b.clone()]);
    let used = RegistrationTokenRecord { completed: 3, ..b };
    s.write(vec![Op::PutRegistrationToken(used.clone()), Op::DeleteRegistrationToken { token: "a".into() }])
        .await
        .unwrap();
    assert_eq!(s.registration_tokens().await.unwrap(), [used]);
    assert_eq!(s.registration_token("a").await.unwrap(), None);
}

async fn deleted_alias_leaves_no_trace_in_the_rooms_alias_list(s: &impl Store) {
    let alias =
        |name: &str, room: &str| AliasRecord { alias: name.into(), room_id: room.into(), creator: "@a:x".into() };
    s.write(vec![Op::PutAlias(alias("#b:x", "!r:x")), Op::PutAlias(alias("#a:x", "!r:x"))]).await.unwrap();
    s.write(vec![Op::PutAlias(alias("#c:x", "!other:x"))]).await.unwrap();
    assert_eq!(s.alias("#a:x").await.unwrap(), Some(alias("#a:x", "!r:x")));
    assert_eq!(s.room_aliases("!r:x").await.unwrap(), ["#a:x", "#b:x"]);
    s.write(vec![Op::DeleteAlias { alias: "#a:x".into() }]).await.unwrap();
    assert_eq!(s.alias("#a:x").await.unwrap(), None);
    assert_eq!(s.room_aliases("!r:x").await.unwrap(), ["#b:x"]);
    assert_eq!(s.room_aliases("!r").await.unwrap(), Vec::<String>::new());
}

async fn unpublished_room_leaves_the_directory(s: &impl Store) {
    let publish = |room: &str, published| Op::SetRoomPublished { room_id: room.into(), published };
    s.write(vec![publish("!b:x", true), publish("!a:x", true)]).await.unwrap();
    assert_eq!(s.published_rooms().await.unwrap(), ["!a:x", "!b:x"]);
    s.write(vec![publish("!a:x", false), publish("!b:x", true)]).await.unwrap();
    assert_eq!(s.published_rooms().await.unwrap(), ["!b:x"]);
}
