//! `GET /_matrix/client/v3/sync` (spec: client-server API, "Syncing"). The
//! request is forwarded to the user's shard, which holds their sync state
//! (see `crate::sync`).

use std::time::Duration;

use serde_json::Value;
use tessera_net::http::{Method, Request, Response, Router};

use super::filter::decode_filter;
use crate::api::client_endpoint;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::state::AppShard;
use crate::sync::token::SyncToken;
use crate::sync::{sync, SyncRequest};

/// Timeline events per room when no filter says otherwise (Synapse's
/// default).
const DEFAULT_TIMELINE_LIMIT: usize = 10;

/// Most timeline events per room a filter may ask for.
const MAX_TIMELINE_LIMIT: usize = 100;

/// Registers the endpoint.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/sync", get);
}

/// The timeline limit of a filter: inline (`filter={...}`) or an ID from
/// `POST /user/{userId}/filter` (400 `M_INVALID_PARAM` for an ID that is
/// not one).
fn timeline_limit(filter: Option<&str>) -> Result<usize, ApiError> {
    let Some(filter) = filter else { return Ok(DEFAULT_TIMELINE_LIMIT) };
    let filter: Value = if filter.starts_with('{') {
        serde_json::from_str(filter).map_err(|e| ApiError::bad_json(format!("filter: {e}")))?
    } else {
        decode_filter(filter).ok_or_else(|| ApiError::invalid_param("`filter` is neither JSON nor a filter ID"))?
    };
    Ok(filter
        .pointer("/room/timeline/limit")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_TIMELINE_LIMIT, |l| (l as usize).clamp(1, MAX_TIMELINE_LIMIT)))
}

async fn get(shard: AppShard, req: Request) -> ApiResult {
    let me = authenticate(&shard, &req).await?;
    let query = Query::of(&req);
    let since = match query.get("since") {
        Some(token) => {
            Some(SyncToken::parse(token).ok_or_else(|| ApiError::invalid_param("`since` is not a sync token"))?)
        }
        None => None,
    };
    let timeout = Duration::from_millis(query.number::<u64>("timeout")?.unwrap_or(0));
    let request = SyncRequest {
        user_id: me.user_id.clone(),
        device_id: me.device_id.clone(),
        since,
        timeout,
        full_state: query.boolean("full_state")?.unwrap_or(false),
        timeline_limit: timeline_limit(query.get("filter"))?,
    };
    let body = sync(&shard, request).await?;
    Ok(Response::json(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_filter_sets_the_timeline_limit_within_bounds() {
        assert_eq!(timeline_limit(None).unwrap(), DEFAULT_TIMELINE_LIMIT);
        assert_eq!(timeline_limit(Some(r#"{"room":{"timeline":{"limit":3}}}"#)).unwrap(), 3);
        assert_eq!(timeline_limit(Some(r#"{"room":{"timeline":{"limit":100000}}}"#)).unwrap(), MAX_TIMELINE_LIMIT);
        assert!(timeline_limit(Some("{bad")).is_err());
    }

    #[test]
    fn filter_ids_set_the_timeline_limit_and_unknown_ids_are_refused() {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"room":{"timeline":{"limit":4}}}"#);
        let id = format!("f{encoded}");
        assert_eq!(timeline_limit(Some(&id)).unwrap(), 4);
        assert_eq!(timeline_limit(Some("0")).unwrap_err().errcode, "M_INVALID_PARAM");
    }
}
