//! `POST /_matrix/client/v3/register` and `GET /register/available`.
//!
//! Spec (client-server API, "Account registration"): registration uses
//! user-interactive authentication. Tessera offers one flow, `m.login.dummy`:
//! the first request is answered 401 with the flows and a `session`, the
//! client repeats it with `auth: {type: "m.login.dummy", session}`.
//! Registration is closed unless `registration.enable` is set; operators
//! create accounts with `/_synapse/admin/v1/register` instead.

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::Store;

use crate::accounts::{self, password, NewAccount};
use crate::api::client_endpoint;
use crate::error::{ApiError, ApiResult};
use crate::rate_limit::{self, Action};
use crate::request::{json_body, random_string, Query};
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/register", post);
    client_endpoint(router, shard, Method::Get, "/register/available", available);
}

#[derive(Deserialize)]
struct Body {
    username: Option<String>,
    password: Option<String>,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
    #[serde(default)]
    inhibit_login: bool,
    auth: Option<AuthData>,
}

#[derive(Deserialize)]
struct AuthData {
    #[serde(rename = "type")]
    kind: Option<String>,
    session: Option<String>,
}

/// The 401 that starts (or continues) user-interactive authentication.
fn uia_challenge(session: Option<String>) -> ApiError {
    let mut e = ApiError::new(401, "M_FORBIDDEN", "user-interactive authentication required");
    e.extra.insert("flows".into(), json!([{ "stages": ["m.login.dummy"] }]));
    e.extra.insert("params".into(), json!({}));
    e.extra.insert("session".into(), session.unwrap_or_else(|| random_string(24)).into());
    e.extra.insert("completed".into(), json!([]));
    e
}

async fn post(shard: AppShard, req: Request) -> ApiResult {
    let config = &shard.state.config;
    let kind = Query::of(&req).get("kind").unwrap_or("user").to_owned();
    if kind == "guest" {
        return register_guest(&shard, &req).await;
    }
    if kind != "user" {
        return Err(ApiError::invalid_param("`kind` must be `user` or `guest`"));
    }
    if !config.registration.enable {
        return Err(ApiError::forbidden("registration is disabled"));
    }
    // Checked first, counted once an account is made (as Synapse does): the
    // steps of one registration are not held against the client.
    let ip = req.client_ip.to_string();
    rate_limit::peek(&shard, Action::Registration, &ip)?;
    let body: Body = json_body(&req)?;
    // Validate what can be validated before authentication, as Synapse does,
    // so a client learns of an invalid name before completing the flow.
    if let Some(name) = &body.username {
        accounts::validate_localpart(&name.to_lowercase(), &config.server_name)?;
    }
    if body.password.as_ref().is_some_and(|p| p.len() > password::MAX_PASSWORD_BYTES) {
        return Err(ApiError::invalid_param("password is too long"));
    }
    let session = match body.auth {
        // The dummy stage has nothing to check, and clients (matrix-nio's
        // `register`) send it without first fetching a session, which
        // Synapse accepts too.
        Some(AuthData { kind: Some(kind), session }) if kind == "m.login.dummy" => session,
        Some(AuthData { kind: Some(_), session }) => {
            let mut e = uia_challenge(session);
            e.message = "unsupported authentication type".into();
            return Err(e);
        }
        Some(AuthData { kind: None, session }) => return Err(uia_challenge(session)),
        None => return Err(uia_challenge(None)),
    };
    let localpart = match (&body.username, &session) {
        (Some(name), _) => name.to_lowercase(),
        // Derived from the session, so repeating a completed registration
        // names the same account (see `accounts::create`).
        (None, Some(session)) => accounts::localpart_for_session(session),
        (None, None) => random_string(12).to_lowercase(),
    };
    let password_hash = match body.password {
        Some(password) => Some(password::hash(password).await),
        // Allowed by the spec: the account cannot log in with a password.
        None => None,
    };
    let account = NewAccount { localpart, password_hash, is_guest: false, is_admin: false, displayname: None, session };
    let user_id = accounts::create(&shard, account).await?;
    // Already checked; a race with another request may overdraw by one.
    let _ = rate_limit::take(&shard, Action::Registration, &ip);
    if body.inhibit_login {
        return Ok(Response::json(&json!({ "user_id": user_id, "home_server": config.server_name })));
    }
    let session = accounts::new_session(&shard, &user_id, body.device_id, body.initial_device_display_name, ip).await?;
    Ok(Response::json(&json!({
        "user_id": user_id,
        "access_token": session.access_token,
        "device_id": session.device_id,
        "home_server": config.server_name,
    })))
}

async fn available(shard: AppShard, req: Request) -> ApiResult {
    let config = &shard.state.config;
    let query = Query::of(&req);
    let name = query.get("username").ok_or_else(|| ApiError::missing_param("`username` is required"))?;
    let name = name.to_lowercase();
    accounts::validate_localpart(&name, &config.server_name)?;
    let user_id = format!("@{name}:{}", config.server_name);
    let vshard = shard.state.placement.vshard(&user_id);
    if shard.state.store.user(vshard, &user_id).await?.is_some() {
        return Err(ApiError::new(400, "M_USER_IN_USE", "user ID already taken"));
    }
    Ok(Response::json(&json!({ "available": true })))
}

/// `kind=guest` (spec: "Guest access"): an account with no password and a
/// generated numeric-looking name, when `registration.allow_guests` is on.
async fn register_guest(shard: &AppShard, req: &Request) -> ApiResult {
    if !shard.state.config.registration.allow_guests {
        return Err(ApiError::forbidden("guest access is disabled"));
    }
    #[derive(Deserialize)]
    struct GuestBody {
        initial_device_display_name: Option<String>,
    }
    let ip = req.client_ip.to_string();
    rate_limit::take(shard, Action::Registration, &ip)?;
    let body: GuestBody = json_body(req)?;
    let localpart = format!("guest-{}", random_string(12).to_lowercase());
    let account = NewAccount {
        localpart,
        password_hash: None,
        is_guest: true,
        is_admin: false,
        displayname: None,
        session: None,
    };
    let user_id = accounts::create(shard, account).await?;
    let session = accounts::new_session(shard, &user_id, None, body.initial_device_display_name, ip).await?;
    Ok(Response::json(&json!({
        "user_id": user_id,
        "access_token": session.access_token,
        "device_id": session.device_id,
        "home_server": shard.state.config.server_name,
    })))
}
