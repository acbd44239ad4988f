//! End-to-end encryption keys of our users' devices (client-server API §
//! End-to-End Encryption, "Key management API"): each device's identity
//! keys (`device_keys`), its one-time keys, handed out once each to
//! devices that start an encrypted session with it, and its fallback key,
//! handed out when the one-time keys ran out.
//!
//! All of a user's key writes and claims run on the user's shard, which
//! also caches each device's key counts for `/sync` (so a sync reads no
//! store). A fallback key is stored as a one-time key of algorithm
//! `fallback/<algorithm>`; once claimed it moves to `fallback-used/…`, where
//! it keeps being handed out until the device uploads a new one: the
//! device learns it was used from `device_unused_fallback_key_types`.
//!
//! A change of a device's keys, a new device and a deleted one are device
//! list changes: the user's room-mates hear of it (their clients fetch the
//! keys again), here through their syncs and on other servers through an
//! `m.device_list_update` EDU.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tessera_storage::records::{DeviceKeysRecord, OneTimeKeyRecord};
use tessera_storage::{Op, Store};

use super::user_writes::on_user_shard;
use crate::error::ApiError;
use crate::request::now_ms;
use crate::state::AppShard;
use crate::sync::tidings::{tell_room_mates, Tiding};

const FALLBACK: &str = "fallback/";
const FALLBACK_USED: &str = "fallback-used/";

/// A device's key counts: unclaimed one-time keys per algorithm, and the
/// algorithms whose fallback key has not been handed out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyCounts {
    pub one_time: BTreeMap<String, u64>,
    pub unused_fallback: Vec<String>,
}

/// The counts cache of a shard's users, by `(user, device)`.
#[derive(Default)]
pub struct CountsCache(RefCell<HashMap<(String, String), KeyCounts>>);

/// What a device uploads (`POST /keys/upload`).
pub struct Upload {
    pub device_keys: Option<Value>,
    pub one_time_keys: Map<String, Value>,
    pub fallback_keys: Map<String, Value>,
}

/// Stores what a device uploaded and returns its one-time key counts.
/// `device_keys` must be of this user and device (400 otherwise).
pub async fn upload(shard: &AppShard, user_id: &str, device_id: &str, upload: Upload) -> Result<KeyCounts, ApiError> {
    if let Some(keys) = &upload.device_keys {
        // Spec (`DeviceKeys`): all five fields are required.
        let well_formed = keys.get("algorithms").is_some_and(Value::is_array)
            && keys.get("keys").is_some_and(Value::is_object)
            && keys.get("signatures").is_some_and(Value::is_object);
        if !well_formed {
            return Err(ApiError::bad_json("device_keys needs algorithms, keys and signatures"));
        }
        let field = |name: &str| keys.get(name).and_then(Value::as_str);
        if field("user_id") != Some(user_id) || field("device_id") != Some(device_id) {
            return Err(ApiError::invalid_param("device_keys are not of this user and device"));
        }
    }
    let one_time = key_records(&upload.one_time_keys, "")?;
    let fallback = key_records(&upload.fallback_keys, FALLBACK)?;
    let (user_id, device_id) = (user_id.to_owned(), device_id.to_owned());
    on_user_shard(shard, &user_id.clone(), move |shard| async move {
        let vshard = shard.state.placement.vshard(&user_id);
        let store = &shard.state.store;
        let mut ops = Vec::new();
        let mut changed = false;
        if let Some(keys) = upload.device_keys {
            let bytes = serde_json::to_vec(&keys).map_err(|e| ApiError::internal(e.to_string()))?;
            let stored = store.device_keys(vshard, &user_id).await?;
            changed = !stored.iter().any(|k| k.device_id == device_id && k.keys == bytes);
            let record = DeviceKeysRecord { user_id: user_id.clone(), device_id: device_id.clone(), keys: bytes };
            ops.push(Op::PutDeviceKeys { vshard, keys: record });
        }
        // A new fallback key replaces the old one, used or not.
        for record in &fallback {
            let algorithm = &record.algorithm[FALLBACK.len()..];
            for old in [format!("{FALLBACK}{algorithm}"), format!("{FALLBACK_USED}{algorithm}")] {
                let (user_id, device_id) = (user_id.clone(), device_id.clone());
                ops.push(Op::ClaimOneTimeKey { vshard, user_id, device_id, algorithm: old });
            }
        }
        let keys: Vec<OneTimeKeyRecord> = one_time.into_iter().chain(fallback).collect();
        if !keys.is_empty() {
            ops.push(Op::PutOneTimeKeys { vshard, user_id: user_id.clone(), device_id: device_id.clone(), keys });
        }
        if !ops.is_empty() {
            store.write(ops).await?;
        }
        forget_counts(&shard, &user_id, &device_id);
        if changed {
            device_list_changed(&shard, &user_id, &device_id, false).await;
        }
        counts_here(&shard, &user_id, &device_id).await
    })
    .await
}

/// `"algorithm:key_id" → key` as records, the algorithm prefixed.
fn key_records(keys: &Map<String, Value>, prefix: &str) -> Result<Vec<OneTimeKeyRecord>, ApiError> {
    keys.iter()
        .map(|(id, key)| {
            let (algorithm, key_id) = id
                .split_once(':')
                .filter(|(a, k)| !a.is_empty() && !k.is_empty())
                .ok_or_else(|| ApiError::invalid_param(format!("{id} is not algorithm:key_id")))?;
            let key = serde_json::to_vec(key).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(OneTimeKeyRecord { algorithm: format!("{prefix}{algorithm}"), key_id: key_id.to_owned(), key })
        })
        .collect()
}

/// The device's key counts (cached), on any shard.
pub async fn counts(shard: &AppShard, user_id: &str, device_id: &str) -> Result<KeyCounts, ApiError> {
    let owner = shard.state.placement.shard(user_id);
    let (user_id, device_id) = (user_id.to_owned(), device_id.to_owned());
    shard
        .ask_async(owner, move |shard| {
            let shard = shard.clone();
            async move { counts_here(&shard, &user_id, &device_id).await }
        })
        .await?
}

/// The counts on the user's shard.
async fn counts_here(shard: &AppShard, user_id: &str, device_id: &str) -> Result<KeyCounts, ApiError> {
    let key = (user_id.to_owned(), device_id.to_owned());
    if let Some(counts) = shard.state.key_counts.0.borrow().get(&key) {
        return Ok(counts.clone());
    }
    let vshard = shard.state.placement.vshard(user_id);
    let mut counts = KeyCounts::default();
    for (algorithm, n) in shard.state.store.one_time_key_counts(vshard, user_id, device_id).await? {
        match algorithm.strip_prefix(FALLBACK) {
            Some(fallback) => counts.unused_fallback.push(fallback.to_owned()),
            None if !algorithm.starts_with(FALLBACK_USED) => drop(counts.one_time.insert(algorithm, n)),
            None => {}
        }
    }
    shard.state.key_counts.0.borrow_mut().insert(key, counts.clone());
    Ok(counts)
}

fn forget_counts(shard: &AppShard, user_id: &str, device_id: &str) {
    shard.state.key_counts.0.borrow_mut().remove(&(user_id.to_owned(), device_id.to_owned()));
}

/// The identity keys of `user_id`'s devices (those of `devices`, or all
/// when empty) that uploaded some, by device, each with `unsigned` holding
/// its display name, if any (spec: `unsigned.device_display_name`).
pub async fn device_keys(shard: &AppShard, user_id: &str, devices: &[String]) -> Result<Map<String, Value>, ApiError> {
    let vshard = shard.state.placement.vshard(user_id);
    let store = &shard.state.store;
    let names: HashMap<String, Option<String>> =
        store.devices(vshard, user_id).await?.into_iter().map(|d| (d.device_id, d.display_name)).collect();
    let mut out = Map::new();
    for record in store.device_keys(vshard, user_id).await? {
        if !devices.is_empty() && !devices.contains(&record.device_id) {
            continue;
        }
        let Ok(mut keys) = serde_json::from_slice::<Value>(&record.keys) else { continue };
        keys["unsigned"] = match names.get(&record.device_id) {
            Some(Some(name)) => json!({ "device_display_name": name }),
            _ => json!({}),
        };
        out.insert(record.device_id, keys);
    }
    Ok(out)
}

/// Claims one key of `algorithm` from a device of ours: a one-time key,
/// else its fallback key. `("algorithm:key_id", key)`, or `None`.
pub async fn claim(
    shard: &AppShard,
    user_id: &str,
    device_id: &str,
    algorithm: &str,
) -> Result<Option<(String, Value)>, ApiError> {
    let (user_id, device_id, algorithm) = (user_id.to_owned(), device_id.to_owned(), algorithm.to_owned());
    on_user_shard(shard, &user_id.clone(), move |shard| async move {
        let vshard = shard.state.placement.vshard(&user_id);
        let store = &shard.state.store;
        let mut found = store.claim_one_time_key(vshard, &user_id, &device_id, &algorithm).await?;
        for source in [FALLBACK, FALLBACK_USED] {
            if found.is_some() {
                break;
            }
            let fallback = format!("{source}{algorithm}");
            if let Some(key) = store.claim_one_time_key(vshard, &user_id, &device_id, &fallback).await? {
                // Kept, as used: handed out again until replaced.
                let used = OneTimeKeyRecord { algorithm: format!("{FALLBACK_USED}{algorithm}"), ..key.clone() };
                let (user, device) = (user_id.clone(), device_id.clone());
                store
                    .write(vec![Op::PutOneTimeKeys { vshard, user_id: user, device_id: device, keys: vec![used] }])
                    .await?;
                found = Some(OneTimeKeyRecord { algorithm: algorithm.clone(), ..key });
            }
        }
        forget_counts(&shard, &user_id, &device_id);
        Ok(found.and_then(|key| {
            let value = serde_json::from_slice(&key.key).ok()?;
            Some((format!("{}:{}", key.algorithm, key.key_id), value))
        }))
    })
    .await
}

/// Tells `user_id`'s room-mates, here and on the rooms' other servers,
/// that a device of theirs was added, changed its keys or name, or (with
/// `deleted`) is gone. Runs on the user's shard.
pub async fn device_list_changed(shard: &AppShard, user_id: &str, device_id: &str, deleted: bool) {
    // Server-server API § Device Management: `stream_id` increases per
    // user; we send no `prev_id`, so a receiver that tracks them resyncs.
    let mut update = json!({
        "user_id": user_id, "device_id": device_id, "stream_id": now_ms(), "prev_id": [], "deleted": deleted,
    });
    if !deleted {
        if let Ok(mut keys) = device_keys(shard, user_id, &[device_id.to_owned()]).await {
            if let Some(mut device) = keys.remove(device_id) {
                if let Some(name) = device.pointer("/unsigned/device_display_name").cloned() {
                    update["device_display_name"] = name;
                }
                if let Some(object) = device.as_object_mut() {
                    object.remove("unsigned");
                }
                update["keys"] = device;
            }
        }
    }
    let edu = json!({ "edu_type": "m.device_list_update", "content": update });
    if let Err(e) = tell_room_mates(shard, user_id, Tiding::Devices, Some(Arc::new(edu))).await {
        tracing::warn!(user = user_id, error = e.message, "device list change not told");
    }
}
