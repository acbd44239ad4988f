//! User-interactive authentication with `m.login.password` or, with single
//! sign-on on, `m.login.sso`, for requests that need the user to prove who
//! they are again (deleting devices, changing the password, deactivating
//! the account).
//!
//! Spec (client-server API, "User-interactive authentication API"): the
//! first request is answered 401 with the flows, their parameters and a
//! session; the client repeats it with `auth: {type: "m.login.password",
//! identifier: {type: "m.id.user", user}, password, session}`. A failed
//! attempt is answered 401 again, with the flows and an `errcode`.
//!
//! Each flow has one stage, so a session carries no progress: Tessera keeps
//! no session state and checks the password of every attempt. The SSO stage
//! is completed in a browser (`api/client/sso.rs`), which records the
//! account that signed in against the session (`accounts/handoff.rs`); the
//! client then repeats its request with just the session, and the request
//! goes on only if that account is the requester's (403 otherwise, as in
//! Synapse). A session is
//! still bound to the operation that started it, as the spec requires ("the
//! server MUST ensure the client does not change the request ... during the
//! session", checked by Synapse on method and URI): its ID is a nonce and an
//! HMAC over the user, method and path under a key of this process, so a
//! client that starts authenticating the deletion of one device cannot
//! finish it on another (403). Sessions do not outlive a restart; the client
//! starts over.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tessera_net::http::{Request, Response};
use tessera_storage::Store;

use crate::accounts::{handoff, password};
use crate::auth::Requester;
use crate::error::ApiError;
use crate::request::random_string;
use crate::sso;
use crate::state::AppShard;

/// The `auth` field of a request.
#[derive(Deserialize, Default)]
pub struct AuthDict {
    #[serde(rename = "type")]
    kind: Option<String>,
    session: Option<String>,
    identifier: Option<Identifier>,
    /// Deprecated since r0.4, still sent by older clients.
    user: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
}

/// The operation a session authenticates.
struct Operation<'a> {
    user_id: &'a str,
    method: String,
    path: &'a str,
}

impl<'a> Operation<'a> {
    fn of(me: &'a Requester, req: &'a Request) -> Self {
        Self { user_id: &me.user_id, method: format!("{:?}", req.method), path: &req.path }
    }

    fn mac(&self, nonce: &str) -> Hmac<Sha256> {
        static KEY: OnceLock<[u8; 32]> = OnceLock::new();
        let key = KEY.get_or_init(|| {
            let mut key = [0u8; 32];
            getrandom::getrandom(&mut key).expect("the OS random source failed");
            key
        });
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        for part in ["tessera-uia-session", self.user_id, &self.method, self.path, nonce] {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        mac
    }

    /// A new session ID for this operation.
    fn new_session(&self) -> String {
        let nonce = random_string(16);
        let tag = self.mac(&nonce).finalize().into_bytes();
        format!("{nonce}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
    }

    /// Whether `session` was issued for this operation.
    fn issued(&self, session: &str) -> bool {
        let Some((nonce, tag)) = session.split_once('.') else { return false };
        URL_SAFE_NO_PAD
            .decode(tag)
            .is_ok_and(|tag| tag.len() == TAG_BYTES && self.mac(nonce).verify_truncated_left(&tag).is_ok())
    }
}

/// Bytes of the HMAC kept in a session ID: 128 bits cannot be guessed.
const TAG_BYTES: usize = 16;

/// The 401 that starts or continues authentication; `error` is set after
/// a failed attempt (the first answer carries no `errcode`, so clients do
/// not show an error before the user typed anything).
fn challenge(shard: &AppShard, op: &Operation<'_>, session: Option<String>, error: Option<(&str, &str)>) -> Response {
    let mut body = Map::new();
    let flows = match sso::cas_server(&shard.state.config) {
        Some(_) => json!([{ "stages": ["m.login.password"] }, { "stages": ["m.login.sso"] }]),
        None => json!([{ "stages": ["m.login.password"] }]),
    };
    body.insert("flows".into(), flows);
    body.insert("params".into(), json!({}));
    body.insert("session".into(), session.unwrap_or_else(|| op.new_session()).into());
    body.insert("completed".into(), json!([]));
    if let Some((errcode, message)) = error {
        body.insert("errcode".into(), errcode.into());
        body.insert("error".into(), message.into());
    }
    Response::with_status(401, "application/json", Value::Object(body).to_string())
}

/// Whether `name` (a localpart or a full user ID) names `user_id`.
fn names(name: &str, user_id: &str) -> bool {
    let name = name.to_lowercase();
    match name.strip_prefix('@') {
        Some(_) => name == user_id,
        None => user_id.strip_prefix('@').and_then(|id| id.split_once(':')).is_some_and(|(local, _)| local == name),
    }
}

/// Checks that `me`, making request `req`, has completed a flow. `Err` holds
/// the answer to send instead of going on: a 401 challenge, or an error.
pub async fn require_auth(
    shard: &AppShard,
    me: &Requester,
    req: &Request,
    auth: Option<AuthDict>,
) -> Result<(), Response> {
    let op = Operation::of(me, req);
    let Some(auth) = auth else { return Err(challenge(shard, &op, None, None)) };
    let session = auth.session;
    if session.as_deref().is_some_and(|s| !op.issued(s)) {
        return Err(ApiError::forbidden("the session was started for another operation (or before a restart)").into());
    }
    match auth.kind.as_deref() {
        None | Some("m.login.sso") => {
            let Some(session) = session else { return Err(challenge(shard, &op, None, None)) };
            let signed_in = handoff::sso_stage(shard, &session).await.map_err(Response::from)?;
            return match signed_in {
                Some(user_id) if user_id == me.user_id => Ok(()),
                Some(_) => Err(ApiError::forbidden("single sign-on confirmed another account").into()),
                None => Err(challenge(shard, &op, Some(session), None)),
            };
        }
        Some("m.login.password") => {}
        Some(_) => {
            return Err(challenge(shard, &op, session, Some(("M_UNRECOGNIZED", "unsupported authentication type"))))
        }
    }
    let name = match (&auth.identifier, &auth.user) {
        (Some(Identifier { kind, user }), _) if kind == "m.id.user" => user.clone(),
        (Some(_), _) => {
            return Err(challenge(
                shard,
                &op,
                session,
                Some(("M_UNRECOGNIZED", "only m.id.user identifiers are supported")),
            ));
        }
        (None, user) => user.clone(),
    };
    // Without an identifier, the account is the requester's.
    if name.is_some_and(|name| !names(&name, &me.user_id)) {
        return Err(ApiError::forbidden("the identifier does not name the authenticated user").into());
    }
    let Some(given) = auth.password.filter(|p| p.len() <= password::MAX_PASSWORD_BYTES) else {
        return Err(challenge(shard, &op, session, Some(("M_FORBIDDEN", "invalid password"))));
    };
    let vshard = shard.state.placement.vshard(&me.user_id);
    let user = shard.state.store.user(vshard, &me.user_id).await.map_err(|e| Response::from(ApiError::from(e)))?;
    let ok = match user.filter(|u| !u.deactivated).and_then(|u| u.password_hash) {
        Some(hash) => password::verify(given, hash).await,
        None => false,
    };
    if !ok {
        return Err(challenge(shard, &op, session, Some(("M_FORBIDDEN", "invalid password"))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_name_the_user_by_localpart_or_full_id_in_any_case() {
        assert!(names("alice", "@alice:x.org"));
        assert!(names("Alice", "@alice:x.org"));
        assert!(names("@alice:x.org", "@alice:x.org"));
        assert!(!names("bob", "@alice:x.org"));
        assert!(!names("@alice:elsewhere", "@alice:x.org"));
    }

    #[test]
    fn session_is_bound_to_user_method_and_path() {
        let op = |user_id, method: &str, path| Operation { user_id, method: method.into(), path };
        let session = op("@a:x", "Delete", "/_matrix/client/v3/devices/ONE").new_session();
        assert!(op("@a:x", "Delete", "/_matrix/client/v3/devices/ONE").issued(&session));
        assert!(!op("@a:x", "Delete", "/_matrix/client/v3/devices/TWO").issued(&session));
        assert!(!op("@b:x", "Delete", "/_matrix/client/v3/devices/ONE").issued(&session));
        assert!(!op("@a:x", "Post", "/_matrix/client/v3/devices/ONE").issued(&session));
        assert!(!op("@a:x", "Delete", "/_matrix/client/v3/devices/ONE").issued("made-up.c2Vzc2lvbg"));
        assert!(!op("@a:x", "Delete", "/_matrix/client/v3/devices/ONE").issued("no-dot"));
    }
}
