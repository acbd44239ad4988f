//! Accounts and their sessions (devices and access tokens), written only by
//! the user's shard so two requests for the same user ID cannot race.

pub mod handoff;
pub mod keys;
pub mod password;
pub mod registration_tokens;
pub mod user_writes;

use tessera_storage::records::{AccessTokenRecord, DeviceRecord, UserRecord};
use tessera_storage::{Op, Store};

use crate::auth::{forget_everywhere, new_access_token, token_digest};
use crate::error::ApiError;
use crate::request::{now_ms, random_string};
use crate::state::AppShard;
use user_writes::on_user_shard;

/// Spec (appendices, "User Identifiers"): localparts of new users consist of
/// `a-z`, `0-9`, `.`, `_`, `=`, `-`, `/` and `+`, and the whole ID is at
/// most 255 bytes.
pub fn validate_localpart(localpart: &str, server_name: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| ApiError::new(400, "M_INVALID_USERNAME", why);
    if localpart.is_empty() {
        return Err(invalid("username must not be empty"));
    }
    if !localpart.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'=' | b'-' | b'/' | b'+')) {
        return Err(invalid("username may contain only a-z, 0-9, and . _ = - / +"));
    }
    if localpart.len() + server_name.len() + 2 > 255 {
        return Err(invalid("user ID would be longer than 255 bytes"));
    }
    Ok(())
}

/// What a new account starts with.
pub struct NewAccount {
    pub localpart: String,
    pub password_hash: Option<String>,
    pub is_guest: bool,
    pub is_admin: bool,
    pub displayname: Option<String>,
    /// The UIA session that completed the registration, if any: repeating
    /// the request with it answers for the same account (Synapse's
    /// "registration is idempotent").
    pub session: Option<String>,
}

/// The localpart of an account registered without a username in UIA
/// session `session`: a digest of the session, so a repeated request maps
/// to the same account.
pub fn localpart_for_session(session: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(session.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("u{hex}")
}

/// Creates an account on the user's shard: its ID, and `false` when this
/// was a repeat of a registration already completed in the same UIA
/// session. 400 `M_USER_IN_USE` if the ID is taken (or being registered
/// right now by another request).
pub async fn create(shard: &AppShard, account: NewAccount) -> Result<(String, bool), ApiError> {
    let user_id = format!("@{}:{}", account.localpart, shard.state.config.server_name);
    // In the user's turn: a second registration of the same name waits for
    // the first and then finds the account taken.
    on_user_shard(shard, &user_id.clone(), move |shard| async move {
        let state = &shard.state;
        let vshard = state.placement.vshard(&user_id);
        let session = account.session.clone();
        if state.store.user(vshard, &user_id).await?.is_some() {
            let repeat = session.as_ref().is_some_and(|s| state.registered_sessions.borrow().get(s) == Some(&user_id));
            return if repeat {
                Ok((user_id, false))
            } else {
                Err(ApiError::new(400, "M_USER_IN_USE", "user ID already taken"))
            };
        }
        let user = UserRecord {
            user_id: user_id.clone(),
            password_hash: account.password_hash,
            created_ts: now_ms(),
            deactivated: false,
            is_guest: account.is_guest,
            is_admin: account.is_admin,
            displayname: account.displayname.or(Some(account.localpart)),
            avatar_url: None,
        };
        state.store.write(vec![Op::PutUser { vshard, user }]).await?;
        if let Some(session) = session {
            let mut sessions = state.registered_sessions.borrow_mut();
            // Repeats come within seconds; bound the memory, not the window.
            if sessions.len() >= 100_000 {
                sessions.clear();
            }
            sessions.insert(session, user_id.clone());
        }
        Ok((user_id, true))
    })
    .await
}

/// A new login session: the device (created, or re-used with its earlier
/// tokens revoked, as the spec requires of a known `device_id`) and an access
/// token for it.
pub struct Session {
    pub device_id: String,
    pub access_token: String,
    /// For a client that asked for one (`refresh_token: true`).
    pub refresh: Option<Refresh>,
}

/// Spec (client-server API, "Refreshing access tokens"): an access token
/// that expires, and the single-use refresh token that gets the next one.
pub struct Refresh {
    pub refresh_token: String,
    pub expires_in_ms: u64,
}

impl Session {
    /// The fields a login or registration answers with.
    pub fn json(&self, user_id: &str, server_name: &str) -> serde_json::Value {
        let mut body = serde_json::json!({
            "user_id": user_id,
            "access_token": self.access_token,
            "device_id": self.device_id,
            "home_server": server_name,
        });
        if let Some(refresh) = &self.refresh {
            body["refresh_token"] = refresh.refresh_token.clone().into();
            body["expires_in_ms"] = refresh.expires_in_ms.into();
        }
        body
    }
}

/// A refresh token's digest: the token's own digest under a prefix, so
/// that it sits with the device's access tokens (revoked with the device)
/// yet never authenticates a request, and an access token never refreshes.
fn refresh_digest(refresh_token: &str) -> Vec<u8> {
    token_digest(&format!("refresh\0{refresh_token}")).to_vec()
}

/// The writes for a new access token of a device, and the session fields.
fn new_tokens(
    shard: &AppShard,
    user_id: &str,
    device_id: &str,
    refreshable: bool,
) -> (String, Option<Refresh>, Vec<Op>) {
    let access_token = new_access_token();
    let lifetime_ms = shard.state.config.sessions.refreshable_lifetime_secs * 1000;
    let expires_ts = refreshable.then(|| now_ms() + lifetime_ms);
    let record =
        |expires_ts| AccessTokenRecord { user_id: user_id.to_owned(), device_id: device_id.to_owned(), expires_ts };
    let mut ops = vec![Op::PutAccessToken { digest: token_digest(&access_token).to_vec(), token: record(expires_ts) }];
    let refresh = refreshable.then(|| {
        let refresh_token = format!("tsf_{}", random_string(40));
        ops.push(Op::PutAccessToken { digest: refresh_digest(&refresh_token), token: record(None) });
        Refresh { refresh_token, expires_in_ms: lifetime_ms }
    });
    (access_token, refresh, ops)
}

/// Uses `refresh_token` (once): a new access token and refresh token for
/// its device. `None` if it is unknown or was used already.
pub async fn refresh(shard: &AppShard, refresh_token: &str) -> Result<Option<(String, Refresh)>, ApiError> {
    let digest = refresh_digest(refresh_token);
    let Some(record) = shard.state.store.access_token(&digest).await? else { return Ok(None) };
    let user_id = record.user_id.clone();
    on_user_shard(shard, &user_id, move |shard| async move {
        // Again in the user's turn: of two refreshes with one token, one wins.
        if shard.state.store.access_token(&digest).await?.is_none() {
            return Ok(None);
        }
        let (access_token, refresh, mut ops) = new_tokens(&shard, &record.user_id, &record.device_id, true);
        let Some(refresh) = refresh else { return Ok(None) };
        ops.push(Op::DeleteAccessToken { digest });
        shard.state.store.write(ops).await?;
        Ok(Some((access_token, refresh)))
    })
    .await
}

/// Starts a session for `user_id`, in the user's turn on the user's shard;
/// with `refreshable`, its access token expires and comes with a refresh
/// token.
pub async fn new_session(
    shard: &AppShard,
    user_id: &str,
    device_id: Option<String>,
    display_name: Option<String>,
    client_ip: String,
    refreshable: bool,
) -> Result<Session, ApiError> {
    let user_id = user_id.to_owned();
    on_user_shard(shard, &user_id.clone(), move |shard| async move {
        let state = &shard.state;
        let vshard = state.placement.vshard(&user_id);
        let device_id = device_id.unwrap_or_else(|| random_string(10).to_uppercase());
        let mut ops = Vec::with_capacity(3);
        let existing = state.store.device(vshard, &user_id, &device_id).await?;
        if existing.is_some() {
            ops.push(Op::DeleteDevice { vshard, user_id: user_id.clone(), device_id: device_id.clone() });
        }
        let new_device = existing.is_none();
        let display_name = display_name.or(existing.and_then(|d| d.display_name));
        ops.push(Op::PutDevice {
            vshard,
            device: DeviceRecord {
                user_id: user_id.clone(),
                device_id: device_id.clone(),
                display_name,
                last_seen_ts: Some(now_ms()),
                last_seen_ip: Some(client_ip),
            },
        });
        let (access_token, refresh, tokens) = new_tokens(&shard, &user_id, &device_id, refreshable);
        ops.extend(tokens);
        state.store.write(ops).await?;
        forget_everywhere(&shard, &user_id, Some(&device_id));
        if new_device {
            keys::device_list_changed(&shard, &user_id, &device_id, false).await;
        }
        Ok(Session { device_id, access_token, refresh })
    })
    .await
}

/// Deletes devices of `user_id` (all of them when `device_id` is `None`),
/// with their tokens, on the user's shard.
pub async fn delete_devices(shard: &AppShard, user_id: &str, device_id: Option<String>) -> Result<(), ApiError> {
    let which = match device_id {
        Some(device_id) => Devices::Listed(vec![device_id]),
        None => Devices::AllBut(None),
    };
    delete_some_devices(shard, user_id, which).await
}

/// Which devices of a user to delete.
pub enum Devices {
    /// These (unknown IDs are skipped).
    Listed(Vec<String>),
    /// Every device but this one (if any), as the user's shard finds them
    /// when it deletes them, so a device created meanwhile goes too.
    AllBut(Option<String>),
}

/// Deletes devices of `user_id`, with their tokens, in the user's turn on
/// the user's shard.
pub async fn delete_some_devices(shard: &AppShard, user_id: &str, which: Devices) -> Result<(), ApiError> {
    let user_id = user_id.to_owned();
    on_user_shard(shard, &user_id.clone(), move |shard| async move {
        let state = &shard.state;
        let vshard = state.placement.vshard(&user_id);
        let devices = match which {
            Devices::Listed(devices) => devices,
            Devices::AllBut(keep) => state
                .store
                .devices(vshard, &user_id)
                .await?
                .into_iter()
                .map(|d| d.device_id)
                .filter(|d| keep.as_ref() != Some(d))
                .collect(),
        };
        let ops: Vec<Op> = devices
            .iter()
            .map(|device_id| Op::DeleteDevice { vshard, user_id: user_id.clone(), device_id: device_id.clone() })
            .collect();
        if !ops.is_empty() {
            state.store.write(ops).await?;
        }
        forget_everywhere(&shard, &user_id, None);
        for device_id in &devices {
            keys::device_list_changed(&shard, &user_id, device_id, true).await;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localpart_grammar_is_the_specs_for_new_users() {
        assert!(validate_localpart("alice.b_c=d-e/f+g", "x").is_ok());
        for bad in ["", "Alice", "al ice", "al:ice", "ålice"] {
            assert_eq!(validate_localpart(bad, "x").unwrap_err().errcode, "M_INVALID_USERNAME", "{bad}");
        }
        assert!(validate_localpart(&"a".repeat(250), "example.org").is_err());
    }
}
