//! Event core throughput, Tessera vs ruma side by side: for each event of a
//! realistic corpus (messages, memberships, power levels; 0.5–5 KB), parse
//! the received bytes, canonicalise and hash (content hash, reference hash /
//! event ID), and verify the sender's signature.
//!
//! Run: `cargo bench -p tessera-benches --bench event_core`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ruma_common::canonical_json::CanonicalJsonObject;
use ruma_common::room_version_rules::RoomVersionRules as RumaRules;
use ruma_common::serde::Base64;
use serde_json::json;
use tessera_proto::canonical_json::{parse_object, to_bytes, Value};
use tessera_proto::hashes::{content_hash, reference_hash};
use tessera_proto::identifiers::EventId;
use tessera_proto::keys::SigningKey;
use tessera_proto::room_version::RoomVersionRules;
use tessera_proto::signatures::{hash_and_sign_event, verify_event, KnownKey, KnownKeys};

// Same allocator as the server binary; it serves both sides alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SERVER: &str = "example.org";

fn key() -> SigningKey {
    SigningKey::from_seed("a_AbCd", [42; 32]).unwrap()
}

fn rules() -> &'static RoomVersionRules {
    RoomVersionRules::get("11").unwrap()
}

fn base_event(event_type: &str, i: usize, content: serde_json::Value) -> serde_json::Value {
    json!({
        "type": event_type,
        "content": content,
        "sender": format!("@user{i}:{SERVER}"),
        "room_id": "!hNnHGqTgQasPJnqhXp:example.org",
        "origin_server_ts": 1_700_000_000_000u64 + i as u64,
        "depth": 1000 + i,
        "prev_events": [format!("$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Z{}", i % 10)],
        "auth_events": [
            "$acR1l0raoZnm60CBwAVgqbZqoOamYU81xysh1u7XcJk",
            "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg",
            "$u0nc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg",
        ],
        "unsigned": {"age_ts": 1_700_000_000_000u64 + i as u64},
    })
}

/// Events as they arrive over federation: signed, as JSON bytes.
fn corpus() -> Vec<Vec<u8>> {
    let lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit — «ünïcödé» 🎉 \"quoted\"\n";
    let mut events = Vec::new();
    for i in 0..60 {
        let event = match i % 6 {
            0 => base_event("m.room.message", i, json!({"msgtype": "m.text", "body": lorem.repeat(1 + i % 3)})),
            1 => base_event(
                "m.room.message",
                i,
                json!({
                    "msgtype": "m.text",
                    "body": lorem.repeat(8 + i % 5),
                    "format": "org.matrix.custom.html",
                    "formatted_body": format!("<p><strong>{}</strong></p>", lorem.repeat(8 + i % 5)),
                    "m.mentions": {"user_ids": ["@alice:example.org"]},
                    "m.relates_to": {"m.in_reply_to": {"event_id": "$acR1l0raoZnm60CBwAVgqbZqoOamYU81xysh1u7XcJk"}},
                }),
            ),
            2 | 3 => {
                let mut event = base_event(
                    "m.room.member",
                    i,
                    json!({
                        "membership": "join",
                        "displayname": format!("User number {i} ({SERVER})"),
                        "avatar_url": "mxc://example.org/SEsfnsuifSDFSSEFsdfsfesdf",
                    }),
                );
                event["state_key"] = json!(format!("@user{i}:{SERVER}"));
                event
            }
            _ => {
                let users: serde_json::Map<_, _> = (0..20 + 15 * (i % 5))
                    .map(|u| (format!("@member{u}:server{}.org", u % 7), json!(u % 101)))
                    .collect();
                let mut event = base_event(
                    "m.room.power_levels",
                    i,
                    json!({
                        "ban": 50, "kick": 50, "redact": 50, "invite": 0, "events_default": 0, "state_default": 50,
                        "users_default": 0, "users": users, "notifications": {"room": 50},
                        "events": {"m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
                                   "m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
                                   "m.room.server_acl": 100, "m.room.encryption": 100},
                    }),
                );
                event["state_key"] = json!("");
                event
            }
        };
        let mut event = parse_object(serde_json::to_string(&event).unwrap().as_bytes()).unwrap();
        hash_and_sign_event(&mut event, SERVER, &key(), rules());
        events.push(to_bytes(&Value::Object(event)));
    }
    events
}

fn bench(c: &mut Criterion) {
    let corpus = corpus();
    let sizes: Vec<usize> = corpus.iter().map(Vec::len).collect();
    eprintln!(
        "corpus: {} events, {}..{} bytes, mean {} bytes",
        corpus.len(),
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        sizes.iter().sum::<usize>() / sizes.len()
    );

    let mut ours_keys = KnownKeys::new();
    ours_keys.insert(SERVER, key().key_id().as_str(), KnownKey { key: key().public_key(), valid_until_ts: None });
    let ruma_rules = RumaRules::V11;
    let mut ruma_keys = ruma_signatures::PublicKeyMap::new();
    ruma_keys.insert(
        SERVER.to_owned(),
        [(key().key_id().to_string(), Base64::new(key().public_key().as_bytes().to_vec()))].into(),
    );

    // Both sides must agree before their speed means anything.
    for bytes in &corpus {
        let ours = parse_object(bytes).unwrap();
        let verified = verify_event(&ours, rules(), &ours_keys).unwrap();
        let theirs: CanonicalJsonObject = serde_json::from_slice(bytes).unwrap();
        ruma_signatures::verify_event(&ruma_keys, &theirs, &ruma_rules).unwrap();
        let id = EventId::from_reference_hash(&verified.reference_hash, rules().event_id_format).unwrap();
        assert_eq!(&id.as_str()[1..], ruma_signatures::reference_hash(&theirs, &ruma_rules).unwrap());
    }

    let ours_full = || {
        for bytes in &corpus {
            let event = parse_object(black_box(bytes)).unwrap();
            let verified = verify_event(&event, rules(), &ours_keys).unwrap();
            black_box(EventId::from_reference_hash(&verified.reference_hash, rules().event_id_format));
        }
    };
    let ruma_full = || {
        for bytes in &corpus {
            let event: CanonicalJsonObject = serde_json::from_slice(black_box(bytes)).unwrap();
            black_box(ruma_signatures::verify_event(&ruma_keys, &event, &ruma_rules).unwrap());
            black_box(ruma_signatures::reference_hash(&event, &ruma_rules).unwrap());
        }
    };
    let ours_hash = || {
        for bytes in &corpus {
            let event = parse_object(black_box(bytes)).unwrap();
            black_box((content_hash(&event), reference_hash(&event, rules())));
        }
    };
    let ruma_hash = || {
        for bytes in &corpus {
            let event: CanonicalJsonObject = serde_json::from_slice(black_box(bytes)).unwrap();
            black_box(ruma_signatures::content_hash(&event).unwrap());
            black_box(ruma_signatures::reference_hash(&event, &ruma_rules).unwrap());
        }
    };

    paired_summary("parse+hash+verify", corpus.len(), &ours_full, &ruma_full);
    paired_summary("parse+hash", corpus.len(), &ours_hash, &ruma_hash);

    for (name, ours, ruma) in [
        ("parse+hash+verify", &ours_full as &dyn Fn(), &ruma_full as &dyn Fn()),
        ("parse+hash", &ours_hash, &ruma_hash),
    ] {
        let mut group = c.benchmark_group(format!("event_core/{name}"));
        group.throughput(Throughput::Elements(corpus.len() as u64));
        group.bench_function("tessera", |b| b.iter(ours));
        group.bench_function("ruma", |b| b.iter(ruma));
        group.finish();
    }
}

/// Times both sides in alternation and keeps each side's fastest round, so
/// that load from other processes on a shared machine, which criterion's
/// one-after-the-other groups would attribute to whichever side ran during
/// it, cancels out of the ratio.
fn paired_summary(name: &str, events: usize, ours: &dyn Fn(), ruma: &dyn Fn()) {
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut best_ours, mut best_ruma) = (Duration::MAX, Duration::MAX);
    for _ in 0..40 {
        best_ours = best_ours.min(time(ours));
        best_ruma = best_ruma.min(time(ruma));
    }
    let per_event = |d: Duration| d.as_secs_f64() * 1e6 / events as f64;
    eprintln!(
        "paired {name}: tessera {:.1} µs/event, ruma {:.1} µs/event, tessera is {:.2}x ruma's throughput",
        per_event(best_ours),
        per_event(best_ruma),
        best_ruma.as_secs_f64() / best_ours.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
