//! `GET /_matrix/client/v3/account/whoami`, `POST /account/password` and
//! `POST /account/deactivate`.
//!
//! Spec (client-server API, "Current account information"): the owner of
//! the access token, its device and whether it is a guest.
//!
//! Spec ("Password management"): "Changes the password for an account on
//! this homeserver. This API endpoint uses the User-Interactive
//! Authentication API to ensure the user changing the password is actually
//! the owner of the account." With `logout_devices` (default `true`) "all
//! access tokens for the user [are] revoked [...] except the access token
//! used in the request"; Tessera deletes every other device, as Synapse
//! does.
//!
//! Spec ("Account deactivation"): "Deactivate the user's account, removing
//! all ability for the user to login again." Also behind user-interactive
//! authentication. Tessera marks the account deactivated, drops its
//! password hash and every device (with their tokens), clears the profile
//! when `erase` is set, and leaves the rooms the user is joined or invited
//! to, as Synapse does. It has no identity server binding, so it answers
//! `id_server_unbind_result: "no-support"`.

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::{Op, Store};

use super::uia::{require_auth, AuthDict};
use crate::accounts::user_writes::on_user_shard;
use crate::accounts::{self, password, Devices};
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::rooms;
use crate::state::AppShard;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/account/whoami", whoami);
    client_endpoint(router, shard, Method::Post, "/account/password", change_password);
    client_endpoint(router, shard, Method::Post, "/account/deactivate", deactivate);
}

async fn whoami(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    Ok(Response::json(&json!({
        "user_id": me.user_id,
        "device_id": me.device_id,
        "is_guest": me.is_guest,
    })))
}

#[derive(Deserialize)]
struct PasswordBody {
    new_password: Option<String>,
    logout_devices: Option<bool>,
    auth: Option<AuthDict>,
}

async fn change_password(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: PasswordBody = json_body(&req)?;
    // Authentication first, as Synapse does: a client's first request may
    // only fetch the flows.
    if let Err(answer) = require_auth(&shard, &me, &req, body.auth).await {
        return Ok(answer);
    }
    let new_password = body.new_password.ok_or_else(|| ApiError::missing_param("`new_password` is required"))?;
    if new_password.len() > password::MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_param("password is too long"));
    }
    let hash = password::hash(new_password).await;
    let user_id = me.user_id.clone();
    on_user_shard(&shard, &me.user_id, move |shard| async move {
        let vshard = shard.state.placement.vshard(&user_id);
        let mut user = shard
            .state
            .store
            .user(vshard, &user_id)
            .await?
            .filter(|u| !u.deactivated)
            .ok_or_else(|| ApiError::forbidden("the account is deactivated"))?;
        user.password_hash = Some(hash);
        shard.state.store.write(vec![Op::PutUser { vshard, user }]).await?;
        Ok(())
    })
    .await?;
    if body.logout_devices.unwrap_or(true) {
        accounts::delete_some_devices(&shard, &me.user_id, Devices::AllBut(Some(me.device_id.clone()))).await?;
    }
    Ok(Response::json(&json!({})))
}

#[derive(Deserialize)]
struct DeactivateBody {
    auth: Option<AuthDict>,
    #[serde(default)]
    erase: bool,
}

async fn deactivate(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: DeactivateBody = json_body(&req)?;
    if let Err(answer) = require_auth(&shard, &me, &req, body.auth).await {
        return Ok(answer);
    }
    let (user_id, erase) = (me.user_id.clone(), body.erase);
    // Deactivated first, so no login succeeds from here on.
    on_user_shard(&shard, &me.user_id, move |shard| async move {
        let vshard = shard.state.placement.vshard(&user_id);
        let Some(mut user) = shard.state.store.user(vshard, &user_id).await? else {
            return Err(ApiError::not_found("unknown user"));
        };
        user.deactivated = true;
        user.password_hash = None;
        if erase {
            user.displayname = None;
            user.avatar_url = None;
        }
        shard.state.store.write(vec![Op::PutUser { vshard, user }]).await?;
        Ok(())
    })
    .await?;
    accounts::delete_some_devices(&shard, &me.user_id, Devices::AllBut(None)).await?;
    leave_all_rooms(&shard, &me.user_id).await?;
    Ok(Response::json(&json!({ "id_server_unbind_result": "no-support" })))
}

/// Leaves (or declines) every room `user_id` is joined or invited to; a
/// room that refuses is logged and skipped.
async fn leave_all_rooms(shard: &AppShard, user_id: &str) -> Result<(), ApiError> {
    let vshard = shard.state.placement.vshard(user_id);
    let mut rooms = shard.state.store.user_rooms(vshard, user_id, Some("join")).await?;
    rooms.extend(shard.state.store.user_rooms(vshard, user_id, Some("invite")).await?);
    let rooms: Vec<String> = rooms.into_iter().map(|r| r.room_id).collect();
    rooms::send_own_membership(shard, user_id, &rooms, "leave", "deactivated user did not leave room").await
}
