//! `POST /_matrix/client/v3/register` and `GET /register/available`.
//!
//! Spec (client-server API, "Account registration"): registration uses
//! user-interactive authentication. Tessera offers one flow: `m.login.dummy`,
//! or with `registration.require_token`, `m.login.registration_token`
//! ("Token-authenticated registration", tokens in
//! [`crate::accounts::registration_tokens`]). The first request is
//! answered 401 with the flows and a `session`; the client repeats it with
//! `auth: {type, session}` (and `token`). Registration is closed unless
//! `registration.enable` is set; operators create accounts with
//! `/_synapse/admin/v1/register` instead.
//!
//! Also `GET /_matrix/client/v1/register/m.login.registration_token/validity`,
//! for clients to check a token before asking for the rest.

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::Store;

use crate::accounts::{self, password, registration_tokens, NewAccount};
use crate::api::{client_endpoint, endpoint};
use crate::error::{ApiError, ApiResult};
use crate::rate_limit::{self, Action};
use crate::request::{json_body, random_string, Query};
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Post, "/register", post);
    client_endpoint(router, shard, Method::Get, "/register/available", available);
    endpoint(router, shard, Method::Get, "/_matrix/client/v1/register/m.login.registration_token/validity", validity);
}

#[derive(Deserialize)]
struct Body {
    username: Option<String>,
    password: Option<String>,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
    #[serde(default)]
    inhibit_login: bool,
    /// Whether the client supports refresh tokens.
    #[serde(default)]
    refresh_token: bool,
    auth: Option<AuthData>,
}

#[derive(Deserialize)]
struct AuthData {
    #[serde(rename = "type")]
    kind: Option<String>,
    session: Option<String>,
    /// `m.login.registration_token`.
    token: Option<String>,
}

/// The one stage of the registration flow.
fn stage(shard: &AppShard) -> &'static str {
    if shard.state.config.registration.require_token {
        "m.login.registration_token"
    } else {
        "m.login.dummy"
    }
}

/// The 401 that starts (or continues) user-interactive authentication.
fn uia_challenge(shard: &AppShard, session: Option<String>) -> ApiError {
    let mut e = ApiError::new(401, "M_FORBIDDEN", "user-interactive authentication required");
    e.extra.insert("flows".into(), json!([{ "stages": [stage(shard)] }]));
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
    // The dummy stage has nothing to check, and clients (matrix-nio's
    // `register`) send it without first fetching a session, which Synapse
    // accepts too. The token is checked when the account is made.
    let (session, token) = match body.auth {
        Some(AuthData { kind: Some(kind), session, token }) if kind == stage(&shard) => (session, token),
        Some(AuthData { kind: Some(_), session, .. }) => {
            let mut e = uia_challenge(&shard, session);
            e.message = "unsupported authentication type".into();
            return Err(e);
        }
        Some(AuthData { kind: None, session, .. }) => return Err(uia_challenge(&shard, session)),
        None => return Err(uia_challenge(&shard, None)),
    };
    let token = match (config.registration.require_token, token) {
        (false, _) => None,
        (true, Some(token)) => Some(token),
        (true, None) => return Err(ApiError::missing_param("`auth.token` is required")),
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
    let retry_session = session.clone();
    let account = NewAccount { localpart, password_hash, is_guest: false, is_admin: false, displayname: None, session };
    let user_id = match token {
        None => accounts::create(&shard, account).await?.0,
        Some(token) => match registration_tokens::register_with(&shard, token, account).await? {
            Some(user_id) => user_id,
            None => {
                let mut e = uia_challenge(&shard, retry_session);
                e.errcode = "M_UNAUTHORIZED".into();
                e.message = "invalid registration token".into();
                return Err(e);
            }
        },
    };
    // Already checked; a race with another request may overdraw by one.
    let _ = rate_limit::take(&shard, Action::Registration, &ip);
    if body.inhibit_login {
        return Ok(Response::json(&json!({ "user_id": user_id, "home_server": config.server_name })));
    }
    let (device, name) = (body.device_id, body.initial_device_display_name);
    let session = accounts::new_session(&shard, &user_id, device, name, ip, body.refresh_token).await?;
    Ok(Response::json(&session.json(&user_id, &config.server_name)))
}

/// Spec: "Queries the server to determine if a given registration token is
/// still valid at the time of request"; 403 when registration takes no
/// tokens. Rate-limited per address: it must not help guess tokens.
async fn validity(shard: AppShard, req: Request) -> ApiResult {
    let registration = &shard.state.config.registration;
    if !(registration.enable && registration.require_token) {
        return Err(ApiError::forbidden("registration does not take tokens here"));
    }
    rate_limit::take(&shard, Action::TokenValidity, &req.client_ip.to_string())?;
    let query = Query::of(&req);
    let token = query.get("token").ok_or_else(|| ApiError::missing_param("`token` is required"))?;
    Ok(Response::json(&json!({ "valid": registration_tokens::check(&shard, token).await? })))
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
    let (user_id, _) = accounts::create(shard, account).await?;
    let session = accounts::new_session(shard, &user_id, None, body.initial_device_display_name, ip, false).await?;
    Ok(Response::json(&session.json(&user_id, &shard.state.config.server_name)))
}
