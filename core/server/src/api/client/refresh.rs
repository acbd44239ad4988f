//! `POST /_matrix/client/v3/refresh`.
//!
//! Spec (client-server API, "Refreshing access tokens"): a client that
//! logged in or registered with `refresh_token: true` gets an access token
//! that expires (`expires_in_ms`) and a refresh token; it trades the
//! refresh token here for a new pair. A refresh token works once; an
//! unknown or used one is 401 `M_UNKNOWN_TOKEN`, and the client logs in
//! again. The old access token lives on until it expires.

use serde::Deserialize;
use serde_json::json;
use tessera_net::http::{Method, Request, Response, Router};

use crate::accounts;
use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::request::json_body;
use crate::state::AppShard;

/// Registers the endpoint (new in v1.3: no `r0` form).
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Post, "/_matrix/client/v3/refresh", refresh);
}

#[derive(Deserialize)]
struct Body {
    refresh_token: String,
}

async fn refresh(shard: AppShard, req: Request) -> ApiResult {
    let body: Body = json_body(&req)?;
    let (access_token, refresh) = accounts::refresh(&shard, &body.refresh_token).await?.ok_or_else(|| {
        ApiError::new(401, "M_UNKNOWN_TOKEN", "unknown or used refresh token").with("soft_logout", false)
    })?;
    Ok(Response::json(&json!({
        "access_token": access_token,
        "refresh_token": refresh.refresh_token,
        "expires_in_ms": refresh.expires_in_ms,
    })))
}
