//! `GET /pushrules/`, `GET /pushrules/global/`, `GET
//! /pushrules/global/{kind}/`, and `GET`, `PUT`, `DELETE
//! /pushrules/global/{kind}/{ruleId}` with its `/enabled` and `/actions`.
//!
//! Spec (client-server API, "Push Rules: API"): "Clients can retrieve, add,
//! modify and remove push rules globally or per-device using the APIs
//! below." Clients read the rules when they start (Element waits for them
//! before its first sync) and edit them from their notification settings.
//! The rule sets and where they are kept: [`crate::push::rules`].

use serde_json::{json, Map, Value};
use tessera_net::http::{Method, Request, Response, Router};

use super::account_data::{read, update};
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::push::rules::{self, Kind, NewRule, Ruleset, PUSH_RULES};
use crate::request::{json_body, Query};
use crate::state::AppShard;

/// Registers the endpoints. The scope is a parameter so that scopes other
/// than `global` get a 400 rather than a 404, as in Synapse.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/pushrules/", get_all);
    client_endpoint(router, shard, Method::Get, "/pushrules/{scope}/", get_global);
    client_endpoint(router, shard, Method::Get, "/pushrules/{scope}/{kind}/", get_kind);
    for incomplete in ["/pushrules/", "/pushrules/{scope}/", "/pushrules/{scope}/{kind}/"] {
        client_endpoint(router, shard, Method::Put, incomplete, put_incomplete);
    }
    let rule = "/pushrules/{scope}/{kind}/{ruleId}";
    client_endpoint(router, shard, Method::Get, rule, get_rule);
    client_endpoint(router, shard, Method::Put, rule, put_rule);
    client_endpoint(router, shard, Method::Delete, rule, delete_rule);
    let field = "/pushrules/{scope}/{kind}/{ruleId}/{field}";
    client_endpoint(router, shard, Method::Get, field, get_field);
    client_endpoint(router, shard, Method::Put, field, put_field);
}

/// A `PUT` without a scope, kind or rule ID: 400, as Synapse answers.
async fn put_incomplete(shard: AppShard, req: Request) -> ApiResult {
    authenticate(&shard, &req).await?;
    Err(ApiError::invalid_param("a push rule is put at /pushrules/global/{kind}/{ruleId}"))
}

/// Listings are asked for with a trailing slash (the router ignores it, so
/// it is checked here): `/pushrules` is a 404 and `/pushrules/global` a
/// 400, as Synapse answers and SyTest checks.
fn require_trailing_slash(req: &Request, status: u16) -> Result<(), ApiError> {
    if req.path.ends_with('/') {
        return Ok(());
    }
    let errcode = if status == 404 { "M_UNRECOGNIZED" } else { "M_INVALID_PARAM" };
    Err(ApiError::new(status, errcode, "push rule listings end with a slash"))
}

/// The `{scope}` path parameter: only `global` exists (the spec dropped
/// per-device rules).
fn require_global(req: &Request) -> Result<(), ApiError> {
    if req.params[0] != "global" {
        return Err(ApiError::invalid_param(format!("unknown push rule scope {}: only global", req.params[0])));
    }
    Ok(())
}

/// The `{field}` path parameter: `enabled` or `actions`.
fn field(req: &Request) -> Result<&'static str, ApiError> {
    match req.params[3].as_str() {
        "enabled" => Ok("enabled"),
        "actions" => Ok("actions"),
        other => Err(ApiError::invalid_param(format!("unknown push rule attribute {other}: enabled or actions"))),
    }
}

/// The requesting user's rule set.
async fn current(shard: &AppShard, user_id: &str) -> Result<Ruleset, ApiError> {
    Ok(rules::ruleset(user_id, read(shard, user_id, None, PUSH_RULES).await?.as_ref()))
}

/// Changes the user's rule set on their shard and stores the result.
async fn change<F>(shard: &AppShard, user_id: &str, edit: F) -> Result<(), ApiError>
where
    F: FnOnce(&mut Ruleset) -> Result<(), ApiError> + Send + 'static,
{
    let owner = user_id.to_owned();
    update(shard, user_id, None, PUSH_RULES.into(), move |stored| {
        let mut set = rules::ruleset(&owner, stored.as_ref());
        edit(&mut set)?;
        Ok(Some(json!({ "global": set })))
    })
    .await?;
    Ok(())
}

/// The `{kind}` path parameter (and the scope before it).
fn kind(req: &Request) -> Result<Kind, ApiError> {
    require_global(req)?;
    Kind::parse(&req.params[1]).ok_or_else(|| {
        ApiError::invalid_param(format!(
            "unknown rule kind {}: override, content, room, sender or underride",
            req.params[1]
        ))
    })
}

async fn get_all(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    require_trailing_slash(&req, 404)?;
    Ok(Response::json(&json!({ "global": current(&shard, &me.user_id).await? })))
}

async fn get_global(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    require_global(&req)?;
    require_trailing_slash(&req, 400)?;
    Ok(Response::json(&current(&shard, &me.user_id).await?))
}

/// The rules of one kind, most important first. Not in the spec's API
/// (which lists the whole set), but Synapse serves it and SyTest reads it.
async fn get_kind(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let kind = kind(&req)?;
    require_trailing_slash(&req, 400)?;
    let mut set = current(&shard, &me.user_id).await?;
    Ok(Response::json(&set.remove(kind.as_str()).unwrap_or_else(|| Value::Array(vec![]))))
}

async fn get_rule(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let kind = kind(&req)?;
    let set = current(&shard, &me.user_id).await?;
    Ok(Response::json(rules::find(&set, kind, &req.params[2])?))
}

async fn put_rule(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let kind = kind(&req)?;
    let body: Map<String, Value> = json_body(&req)?;
    let query = Query::of(&req);
    let (before, after) = (query.get("before").map(str::to_owned), query.get("after").map(str::to_owned));
    let rule_id = req.params[2].clone();
    change(&shard, &me.user_id, move |set| {
        let new = NewRule { kind, rule_id: &rule_id, body: &body, before: before.as_deref(), after: after.as_deref() };
        rules::put(set, new)
    })
    .await?;
    Ok(Response::json(&json!({})))
}

async fn delete_rule(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let kind = kind(&req)?;
    let rule_id = req.params[2].clone();
    change(&shard, &me.user_id, move |set| rules::delete(set, kind, &rule_id)).await?;
    Ok(Response::json(&json!({})))
}

async fn get_field(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let kind = kind(&req)?;
    let field = field(&req)?;
    let set = current(&shard, &me.user_id).await?;
    let value = rules::find(&set, kind, &req.params[2])?.get(field).cloned().unwrap_or(Value::Null);
    Ok(Response::json(&json!({ field: value })))
}

async fn put_field(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let kind = kind(&req)?;
    let field = field(&req)?;
    let mut body: Map<String, Value> = json_body(&req)?;
    let value = body.remove(field).ok_or_else(|| ApiError::bad_json(format!("`{field}` is required")))?;
    match field {
        "enabled" if !value.is_boolean() => return Err(ApiError::bad_json("`enabled` must be a boolean")),
        "actions" => rules::check_actions(&value)?,
        _ => {}
    }
    let rule_id = req.params[2].clone();
    change(&shard, &me.user_id, move |set| rules::set_field(set, kind, &rule_id, field, value)).await?;
    Ok(Response::json(&json!({})))
}
