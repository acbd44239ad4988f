//! Other servers' signing keys: what a shard knows, where it gets the rest.
//!
//! Spec (server-server API § Retrieving server keys): a server's keys come
//! from its own `GET /_matrix/key/v2/server`, "signed by the server
//! itself", and may be cached until `valid_until_ts` (at most 7 days
//! ahead). A key is looked up in this shard's cache, then in storage (keys
//! any shard fetched before), and only then fetched from the server; what
//! is fetched is stored for the other shards and for restarts.
//!
//! The raw responses are kept too (memory only, per shard), by key ID, so
//! this server can act as a notary (`/_matrix/key/v2/query`): it relays a
//! server's own signed response, countersigned. A response is never
//! replaced by one that lacks its key, so a server that later publishes
//! other keys cannot make the notary forget the earlier ones.
//!
//! Not done yet: asking notary servers ourselves when the origin cannot be
//! reached.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use tessera_net::http::{Method, OutRequest};
use tessera_proto::canonical_json::{parse_object_with, Numbers, Object};
use tessera_proto::identifiers::ServerName;
use tessera_proto::keys::{parse_server_keys, PublicKey};
use tessera_proto::signatures::{KnownKey, KnownKeys};
use tessera_storage::records::ServerKeyRecord;
use tessera_storage::{Op, Store};

use super::request::send_to;
use super::FedError;
use crate::request::now_ms;
use crate::state::AppShard;

/// Verify keys one shard knows, by server and key ID, and the responses
/// they came in.
#[derive(Default)]
pub struct KeyCache {
    keys: RefCell<HashMap<String, HashMap<String, KnownKey>>>,
    responses: RefCell<HashMap<String, HashMap<String, Rc<Fetched>>>>,
}

/// A server's own key response, as fetched.
pub struct Fetched {
    /// The response object, with the origin's signatures.
    pub response: Object,
    /// Its `valid_until_ts` (not capped: a notary reports what the origin
    /// said).
    pub valid_until_ts: u64,
}

impl KeyCache {
    fn valid(&self, server: &str, key_id: &str, now: u64) -> Option<KnownKey> {
        let keys = self.keys.borrow();
        let key = *keys.get(server)?.get(key_id)?;
        key.valid_until_ts.is_none_or(|until| until >= now).then_some(key)
    }

    fn insert(&self, server: &str, key_id: &str, key: KnownKey) {
        self.keys.borrow_mut().entry(server.to_owned()).or_default().insert(key_id.to_owned(), key);
    }

    /// The fetched responses of `server` that hold `key_id` (or all of
    /// them), each once.
    fn responses_of(&self, server: &str, key_id: Option<&str>) -> Vec<Rc<Fetched>> {
        let responses = self.responses.borrow();
        let Some(by_key) = responses.get(server) else { return Vec::new() };
        let mut found: Vec<Rc<Fetched>> = Vec::new();
        for (id, fetched) in by_key {
            if key_id.is_none_or(|k| k == id) && !found.iter().any(|f| Rc::ptr_eq(f, fetched)) {
                found.push(fetched.clone());
            }
        }
        found
    }
}

/// `server`'s own key responses that hold `key_id` (any key when `None`)
/// and are valid until at least `min_valid_until_ts`, fetching afresh
/// when the cached ones are not; when the server cannot give better, the
/// best cached ones (expired keys included, as the spec lets a notary).
pub async fn responses_for(
    shard: &AppShard,
    server: &str,
    key_id: Option<&str>,
    min_valid_until_ts: u64,
) -> Vec<Rc<Fetched>> {
    let cache = &shard.state.federation.keys;
    let fresh = |all: Vec<Rc<Fetched>>| -> Vec<Rc<Fetched>> {
        all.into_iter().filter(|f| f.valid_until_ts >= min_valid_until_ts).collect()
    };
    let cached = fresh(cache.responses_of(server, key_id));
    if !cached.is_empty() {
        return cached;
    }
    if let Err(e) = fetch(shard, server).await {
        tracing::debug!(server, error = %e, "notary: cannot fetch keys");
    }
    let all = cache.responses_of(server, key_id);
    let fetched = fresh(all.clone());
    if fetched.is_empty() {
        all
    } else {
        fetched
    }
}

/// `server`'s key `key_id`, valid now, as a key set for verification.
pub async fn key_for(shard: &AppShard, server: &str, key_id: &str) -> Result<KnownKeys, FedError> {
    let key = find(shard, server, key_id).await?;
    let mut known = KnownKeys::new();
    known.insert(server, key_id, key);
    Ok(known)
}

async fn find(shard: &AppShard, server: &str, key_id: &str) -> Result<KnownKey, FedError> {
    let now = now_ms();
    let own = &shard.state.keys;
    if server == own.server_name.as_str() {
        let current = own.current.iter().find(|k| k.key_id().as_str() == key_id);
        let key = current.map(|k| KnownKey { key: k.public_key(), valid_until_ts: None }).or_else(|| {
            let old = own.old.iter().find(|k| k.key_id.as_str() == key_id)?;
            Some(KnownKey { key: old.key, valid_until_ts: Some(old.expired_ts) })
        });
        return key.ok_or_else(|| unknown(server, key_id));
    }
    let cache = &shard.state.federation.keys;
    if let Some(key) = cache.valid(server, key_id, now) {
        return Ok(key);
    }
    for record in shard.state.store.server_keys(server).await? {
        if let Ok(key) = PublicKey::from_base64(&record.public_key) {
            cache.insert(server, &record.key_id, KnownKey { key, valid_until_ts: Some(record.valid_until_ts) });
        }
    }
    if let Some(key) = cache.valid(server, key_id, now) {
        return Ok(key);
    }
    fetch(shard, server).await?;
    cache.valid(server, key_id, now).ok_or_else(|| unknown(server, key_id))
}

fn unknown(server: &str, key_id: &str) -> FedError {
    FedError::Invalid { server: server.to_owned(), reason: format!("no valid key {key_id}") }
}

/// Fetches `server`'s own key response, checks its self-signatures, and
/// keeps its keys in this shard's cache and in storage.
async fn fetch(shard: &AppShard, server: &str) -> Result<(), FedError> {
    let invalid = |reason: String| FedError::Invalid { server: server.to_owned(), reason };
    let name = ServerName::parse(server).map_err(|e| invalid(e.to_string()))?;
    let request = OutRequest { method: Method::Get, path: "/_matrix/key/v2/server", headers: &[], json: None };
    let response = send_to(shard, server, &request).await?;
    if response.status != 200 {
        return Err(invalid(format!("key request answered {}", response.status)));
    }
    let keys = parse_server_keys(&response.body, &name).map_err(|e| invalid(e.to_string()))?;
    let raw = parse_object_with(&response.body, Numbers::Lax).map_err(|e| invalid(e.to_string()))?;
    let fetched = Rc::new(Fetched { response: raw, valid_until_ts: keys.valid_until_ts });
    {
        let mut responses = shard.state.federation.keys.responses.borrow_mut();
        let by_key = responses.entry(server.to_owned()).or_default();
        for (key_id, _) in &keys.verify_keys {
            by_key.insert(key_id.as_str().to_owned(), fetched.clone());
        }
    }
    let cache = &shard.state.federation.keys;
    let mut records = Vec::new();
    for (key_id, key) in keys.usable(now_ms()) {
        cache.insert(server, key_id.as_str(), key);
        records.push(ServerKeyRecord {
            server_name: server.to_owned(),
            key_id: key_id.as_str().to_owned(),
            public_key: key.key.to_base64(),
            valid_until_ts: key.valid_until_ts.unwrap_or(u64::MAX),
        });
    }
    shard.state.store.write(vec![Op::PutServerKeys { keys: records }]).await?;
    Ok(())
}
