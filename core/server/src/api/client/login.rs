//! `GET` and `POST /_matrix/client/v3/login`.
//!
//! Spec (client-server API, "Login"): `m.login.password` with a user
//! identifier (`m.id.user`, or the deprecated top-level `user`), creating a
//! device and an access token. A wrong password and an unknown user get the
//! same 403, so logins cannot probe for accounts. With single sign-on on
//! (`[cas]`), also `m.login.token` with a token from the sign-in's last page
//! ("Token-based login"), and the `m.login.sso` flow naming the provider.

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::Store;

use super::sso::CAS_IDP_ID;
use crate::accounts::{self, handoff, password};
use crate::api::client_endpoint;
use crate::error::{ApiError, ApiResult};
use crate::rate_limit::{self, Action};
use crate::request::json_body;
use crate::sso;
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/login", |shard: AppShard, _| async move {
        Ok(Response::json(&json!({ "flows": flows(&shard) })))
    });
    client_endpoint(router, shard, Method::Post, "/login", post);
}

/// The login types offered. `m.login.cas` is the pre-spec name of the SSO
/// flow, still listed (as Synapse does) for clients that look for it.
fn flows(shard: &AppShard) -> serde_json::Value {
    if sso::cas_server(&shard.state.config).is_none() {
        return json!([{ "type": "m.login.password" }]);
    }
    json!([
        { "type": "m.login.password" },
        { "type": "m.login.sso", "identity_providers": [{ "id": CAS_IDP_ID, "name": "CAS" }] },
        { "type": "m.login.cas" },
        { "type": "m.login.token" },
    ])
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "type")]
    kind: String,
    identifier: Option<Identifier>,
    /// Deprecated since r0.4, still sent by older clients.
    user: Option<String>,
    password: Option<String>,
    /// `m.login.token`.
    token: Option<String>,
    /// Whether the client supports refresh tokens.
    #[serde(default)]
    refresh_token: bool,
    device_id: Option<String>,
    initial_device_display_name: Option<String>,
}

#[derive(Deserialize)]
struct Identifier {
    #[serde(rename = "type")]
    kind: String,
    user: Option<String>,
}

/// The full user ID a login names: a localpart or a full ID of this server.
fn user_id_of(name: &str, server_name: &str) -> Result<String, ApiError> {
    let forbidden = || ApiError::forbidden("invalid username or password");
    let name = name.to_lowercase();
    match name.strip_prefix('@') {
        Some(full) => match full.split_once(':') {
            Some((_, server)) if server == server_name => Ok(name),
            _ => Err(forbidden()),
        },
        None => Ok(format!("@{name}:{server_name}")),
    }
}

async fn post(shard: AppShard, req: Request) -> ApiResult {
    rate_limit::take(&shard, Action::Login, &req.client_ip.to_string())?;
    let body: Body = json_body(&req)?;
    let user_id = match body.kind.as_str() {
        "m.login.password" => password_login(&shard, &body).await?,
        "m.login.token" if sso::cas_server(&shard.state.config).is_some() => {
            let token = body.token.as_deref().ok_or_else(|| ApiError::missing_param("`token` is required"))?;
            let user_id = handoff::redeem_login_token(&shard, token)
                .await?
                .ok_or_else(|| ApiError::forbidden("invalid or expired login token"))?;
            // Deactivated since the sign-in: no new sessions.
            let vshard = shard.state.placement.vshard(&user_id);
            if shard.state.store.user(vshard, &user_id).await?.is_none_or(|u| u.deactivated) {
                return Err(ApiError::forbidden("invalid or expired login token"));
            }
            user_id
        }
        other => return Err(ApiError::new(400, "M_UNKNOWN", format!("login type {other} is not supported"))),
    };
    let ip = req.client_ip.to_string();
    let (device, name) = (body.device_id, body.initial_device_display_name);
    let session = accounts::new_session(&shard, &user_id, device, name, ip, body.refresh_token).await?;
    Ok(Response::json(&session.json(&user_id, &shard.state.config.server_name)))
}

/// The account an `m.login.password` login proves, or 403.
async fn password_login(shard: &AppShard, body: &Body) -> Result<String, ApiError> {
    let name = match (&body.identifier, &body.user) {
        (Some(Identifier { kind, user: Some(user) }), _) if kind == "m.id.user" => user.clone(),
        (Some(Identifier { kind, .. }), _) if kind != "m.id.user" => {
            return Err(ApiError::new(400, "M_UNKNOWN", format!("identifier type {kind} is not supported")));
        }
        (_, Some(user)) => user.clone(),
        _ => return Err(ApiError::missing_param("`identifier.user` is required")),
    };
    let password = body.password.clone().ok_or_else(|| ApiError::missing_param("`password` is required"))?;
    let config = &shard.state.config;
    let user_id = user_id_of(&name, &config.server_name)?;
    // Guessing one account's password is slowed down whatever the address.
    rate_limit::peek(shard, Action::LoginFailure, &user_id)?;
    let vshard = shard.state.placement.vshard(&user_id);
    let user = shard.state.store.user(vshard, &user_id).await?;
    let hash = user.filter(|u| !u.deactivated).and_then(|u| u.password_hash);
    let ok = match hash {
        Some(hash) if password.len() <= password::MAX_PASSWORD_BYTES => password::verify(password, hash).await,
        _ => false,
    };
    if !ok {
        let _ = rate_limit::take(shard, Action::LoginFailure, &user_id);
        return Err(ApiError::forbidden("invalid username or password"));
    }
    Ok(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_are_localparts_or_ids_of_this_server() {
        assert_eq!(user_id_of("Alice", "x.org").unwrap(), "@alice:x.org");
        assert_eq!(user_id_of("@alice:x.org", "x.org").unwrap(), "@alice:x.org");
        assert!(user_id_of("@alice:elsewhere", "x.org").is_err());
    }
}
