//! User-interactive authentication with `m.login.password`, for requests
//! that need the user to prove who they are again (deleting devices,
//! changing the password, deactivating the account).
//!
//! Spec (client-server API, "User-interactive authentication API"): the
//! first request is answered 401 with the flows, their parameters and a
//! session; the client repeats it with `auth: {type: "m.login.password",
//! identifier: {type: "m.id.user", user}, password, session}`. A failed
//! attempt is answered 401 again, with the flows and an `errcode`.
//!
//! There is one stage, so a session carries no progress: Tessera keeps no
//! session state and checks the password of every attempt.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_net::http::Response;
use tessera_storage::Store;

use crate::accounts::password;
use crate::auth::Requester;
use crate::error::ApiError;
use crate::request::random_string;
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

/// The 401 that starts or continues authentication; `error` is set after
/// a failed attempt (the first answer carries no `errcode`, so clients do
/// not show an error before the user typed anything).
fn challenge(session: Option<String>, error: Option<(&str, &str)>) -> Response {
    let mut body = Map::new();
    body.insert("flows".into(), json!([{ "stages": ["m.login.password"] }]));
    body.insert("params".into(), json!({}));
    body.insert("session".into(), session.unwrap_or_else(|| random_string(24)).into());
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

/// Checks the password stage for `me`. `Err` holds the answer to send
/// instead of going on: a 401 challenge, or an error.
pub async fn require_password(shard: &AppShard, me: &Requester, auth: Option<AuthDict>) -> Result<(), Response> {
    let Some(auth) = auth else { return Err(challenge(None, None)) };
    let session = auth.session;
    match auth.kind.as_deref() {
        None => return Err(challenge(session, None)),
        Some("m.login.password") => {}
        Some(_) => return Err(challenge(session, Some(("M_UNRECOGNIZED", "unsupported authentication type")))),
    }
    let name = match (&auth.identifier, &auth.user) {
        (Some(Identifier { kind, user }), _) if kind == "m.id.user" => user.clone(),
        (Some(_), _) => {
            return Err(challenge(session, Some(("M_UNRECOGNIZED", "only m.id.user identifiers are supported"))));
        }
        (None, user) => user.clone(),
    };
    // Without an identifier, the account is the requester's.
    if name.is_some_and(|name| !names(&name, &me.user_id)) {
        return Err(ApiError::forbidden("the identifier does not name the authenticated user").into());
    }
    let Some(given) = auth.password.filter(|p| p.len() <= password::MAX_PASSWORD_BYTES) else {
        return Err(challenge(session, Some(("M_FORBIDDEN", "invalid password"))));
    };
    let vshard = shard.state.placement.vshard(&me.user_id);
    let user = shard.state.store.user(vshard, &me.user_id).await.map_err(|e| Response::from(ApiError::from(e)))?;
    let ok = match user.filter(|u| !u.deactivated).and_then(|u| u.password_hash) {
        Some(hash) => password::verify(given, hash).await,
        None => false,
    };
    if !ok {
        return Err(challenge(session, Some(("M_FORBIDDEN", "invalid password"))));
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
}
