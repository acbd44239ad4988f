//! `GET /devices`, `GET`/`PUT`/`DELETE /devices/{deviceId}` and
//! `POST /delete_devices`.
//!
//! Spec (client-server API, "Device management"): "Gets information about
//! all devices for the current user"; "Gets information on a single device"
//! (404 "the current user has no device with the given ID"); "Updates the
//! metadata on the given device" (404 for an unknown device: Tessera does
//! not create devices this way); "This API endpoint uses the
//! User-Interactive Authentication API" to delete one device or several.
//! Deleting a device also deletes its access tokens, keys and to-device
//! inbox ([`accounts::delete_some_devices`]). Like Synapse, a device name is
//! at most 100 characters, and deleting an unknown device succeeds.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};
use tessera_storage::records::DeviceRecord;
use tessera_storage::{Op, Store};

use super::uia::{require_auth, AuthDict};
use crate::accounts::keys::device_list_changed;
use crate::accounts::user_writes::on_user_shard;
use crate::accounts::{self, Devices};
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::state::AppShard;

/// Longest device display name, in characters (Synapse's
/// `MAX_DEVICE_DISPLAY_NAME_LEN`).
pub const MAX_DEVICE_NAME_CHARS: usize = 100;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/devices", list);
    client_endpoint(router, shard, Method::Get, "/devices/{deviceId}", get);
    client_endpoint(router, shard, Method::Put, "/devices/{deviceId}", rename);
    client_endpoint(router, shard, Method::Delete, "/devices/{deviceId}", delete);
    client_endpoint(router, shard, Method::Post, "/delete_devices", delete_many);
}

/// A device as the spec's `Device` object.
fn device_json(device: &DeviceRecord) -> Value {
    let mut out = Map::new();
    out.insert("device_id".into(), device.device_id.clone().into());
    if let Some(name) = &device.display_name {
        out.insert("display_name".into(), name.clone().into());
    }
    if let Some(ip) = &device.last_seen_ip {
        out.insert("last_seen_ip".into(), ip.clone().into());
    }
    if let Some(ts) = device.last_seen_ts {
        out.insert("last_seen_ts".into(), ts.into());
    }
    Value::Object(out)
}

async fn list(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let vshard = shard.state.placement.vshard(&me.user_id);
    let devices = shard.state.store.devices(vshard, &me.user_id).await?;
    Ok(Response::json(&json!({ "devices": devices.iter().map(device_json).collect::<Vec<_>>() })))
}

async fn get(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let vshard = shard.state.placement.vshard(&me.user_id);
    let device = shard
        .state
        .store
        .device(vshard, &me.user_id, &req.params[0])
        .await?
        .ok_or_else(|| ApiError::not_found("unknown device"))?;
    Ok(Response::json(&device_json(&device)))
}

#[derive(Deserialize)]
struct RenameBody {
    display_name: Option<String>,
}

async fn rename(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: RenameBody = json_body(&req)?;
    if body.display_name.as_ref().is_some_and(|n| n.chars().count() > MAX_DEVICE_NAME_CHARS) {
        return Err(ApiError::new(
            400,
            "M_TOO_LARGE",
            format!("device display name is too long (max {MAX_DEVICE_NAME_CHARS})"),
        ));
    }
    let (user_id, device_id) = (me.user_id.clone(), req.params[0].clone());
    on_user_shard(&shard, &me.user_id, move |shard| async move {
        let vshard = shard.state.placement.vshard(&user_id);
        let store = &shard.state.store;
        let mut device =
            store.device(vshard, &user_id, &device_id).await?.ok_or_else(|| ApiError::not_found("unknown device"))?;
        // Without `display_name` there is nothing to change.
        if let Some(name) = body.display_name.filter(|n| device.display_name.as_ref() != Some(n)) {
            device.display_name = Some(name);
            store.write(vec![Op::PutDevice { vshard, device }]).await?;
            device_list_changed(&shard, &user_id, &device_id, false).await;
        }
        Ok(())
    })
    .await?;
    Ok(Response::json(&json!({})))
}

#[derive(Deserialize)]
struct DeleteBody {
    auth: Option<AuthDict>,
}

async fn delete(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: DeleteBody = json_body(&req)?;
    if let Err(answer) = require_auth(&shard, &me, &req, body.auth).await {
        return Ok(answer);
    }
    accounts::delete_some_devices(&shard, &me.user_id, Devices::Listed(vec![req.params[0].clone()])).await?;
    Ok(Response::json(&json!({})))
}

#[derive(Deserialize)]
struct DeleteManyBody {
    devices: Option<Vec<String>>,
    auth: Option<AuthDict>,
}

async fn delete_many(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let body: DeleteManyBody = json_body(&req)?;
    let devices = body.devices.ok_or_else(|| ApiError::missing_param("`devices` is required"))?;
    if let Err(answer) = require_auth(&shard, &me, &req, body.auth).await {
        return Ok(answer);
    }
    accounts::delete_some_devices(&shard, &me.user_id, Devices::Listed(devices)).await?;
    Ok(Response::json(&json!({})))
}
