//! `GET /_matrix/client/v3/sync` (spec: client-server API, "Syncing"). The
//! request is forwarded to the user's shard, which holds their sync state
//! (see `crate::sync`).

use std::time::Duration;

use tessera_net::http::{Method, Request, Response, Router};

use super::filter::Filter;
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

/// The timeline limit a filter asks for, within bounds (0 is allowed: a
/// client that wants state only).
fn timeline_limit(filter: &Filter) -> usize {
    filter.room.timeline.event.limit.map_or(DEFAULT_TIMELINE_LIMIT, |l| (l as usize).min(MAX_TIMELINE_LIMIT))
}

/// `set_presence`: "Controls whether the client is automatically marked
/// as online by polling this API. [...] Defaults to `online`." `offline`
/// leaves the presence as it is (the client is not marked online).
fn set_presence(param: Option<&str>) -> Result<Option<String>, ApiError> {
    match param.unwrap_or("online") {
        "offline" => Ok(None),
        state @ ("online" | "unavailable") => Ok(Some(state.to_owned())),
        _ => Err(ApiError::invalid_param("`set_presence` must be online, offline or unavailable")),
    }
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
    let filter = query.get("filter").map(Filter::cached).transpose()?.unwrap_or_default();
    let timeout = Duration::from_millis(query.number::<u64>("timeout")?.unwrap_or(0));
    let request = SyncRequest {
        user_id: me.user_id.clone(),
        device_id: me.device_id.clone(),
        since,
        timeout,
        full_state: query.boolean("full_state")?.unwrap_or(false),
        timeline_limit: timeline_limit(&filter),
        filter,
        set_presence: set_presence(query.get("set_presence"))?,
    };
    let body = sync(&shard, request).await?;
    Ok(Response::json(&body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_limits_default_to_ten_and_are_capped() {
        let limit = |json: &str| timeline_limit(&Filter::from_param(json).unwrap());
        assert_eq!(limit("{}"), DEFAULT_TIMELINE_LIMIT);
        assert_eq!(limit(r#"{"room":{"timeline":{"limit":0}}}"#), 0);
        assert_eq!(limit(r#"{"room":{"timeline":{"limit":100000}}}"#), MAX_TIMELINE_LIMIT);
    }
}
