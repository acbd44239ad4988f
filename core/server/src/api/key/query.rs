//! `GET /_matrix/key/v2/query/{serverName}` and `POST /_matrix/key/v2/query`
//!
//! Spec (server-server API, "Querying Keys Through Another Server"):
//! "Servers may query another server's keys through a notary server. The
//! notary server may be another homeserver. The notary server will
//! retrieve keys from the queried servers through use of the
//! `/_matrix/key/v2/server` API." Each returned response is the origin's
//! own, "signed by the notary server in addition to the origin"; if the
//! notary cannot reach the origin it returns "the most recent keys it has
//! cached", even expired ones. `minimum_valid_until_ts` asks for keys valid
//! at least until then, making the notary refetch older ones.
//!
//! The deprecated `GET /query/{serverName}/{keyId}` form (still used by
//! SyTest and older servers) is served too.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Deserialize;
use tessera_net::http::{Method, Request, Response, Router};
use tessera_proto::canonical_json::{to_bytes, Object, Value as CanonicalValue};
use tessera_proto::signatures::sign_json;

use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::federation::keys::{responses_for, Fetched};
use crate::request::{json_body, Query};
use crate::state::AppShard;

/// Most servers one query may name: each costs a fetch at worst.
const MAX_SERVERS: usize = 100;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Get, "/_matrix/key/v2/query/{serverName}", |s, r| get(s, r, false));
    endpoint(router, shard, Method::Get, "/_matrix/key/v2/query/{serverName}/{keyId}", |s, r| get(s, r, true));
    endpoint(router, shard, Method::Post, "/_matrix/key/v2/query", post);
}

async fn get(shard: AppShard, req: Request, with_key: bool) -> ApiResult {
    let min = Query::of(&req).number::<u64>("minimum_valid_until_ts")?.unwrap_or(0);
    let key_id = with_key.then(|| req.params[1].as_str());
    let found = responses_for(&shard, &req.params[0], key_id, min).await;
    answer(&shard, found)
}

#[derive(Deserialize)]
struct Criteria {
    #[serde(default)]
    minimum_valid_until_ts: Option<u64>,
}

#[derive(Deserialize)]
struct PostBody {
    server_keys: BTreeMap<String, BTreeMap<String, Criteria>>,
}

async fn post(shard: AppShard, req: Request) -> ApiResult {
    let body: PostBody = json_body(&req)?;
    if body.server_keys.len() > MAX_SERVERS {
        return Err(ApiError::invalid_param(format!("at most {MAX_SERVERS} servers per query")));
    }
    let mut found: Vec<Rc<Fetched>> = Vec::new();
    for (server, keys) in &body.server_keys {
        let asks: Vec<(Option<&str>, u64)> = if keys.is_empty() {
            vec![(None, 0)]
        } else {
            keys.iter().map(|(id, c)| (Some(id.as_str()), c.minimum_valid_until_ts.unwrap_or(0))).collect()
        };
        for (key_id, min) in asks {
            for fetched in responses_for(&shard, server, key_id, min).await {
                if !found.iter().any(|f| Rc::ptr_eq(f, &fetched)) {
                    found.push(fetched);
                }
            }
        }
    }
    answer(&shard, found)
}

/// `{"server_keys": [...]}`, each response countersigned by this server.
fn answer(shard: &AppShard, found: Vec<Rc<Fetched>>) -> ApiResult {
    let keys = &shard.state.keys;
    let signed: Vec<CanonicalValue> = found
        .iter()
        .map(|fetched| {
            let mut response: Object = fetched.response.clone();
            sign_json(&mut response, keys.server_name.as_str(), &keys.current[0]);
            CanonicalValue::from(response)
        })
        .collect();
    let mut body = Object::new();
    body.insert("server_keys", CanonicalValue::Array(signed));
    Ok(Response::json_bytes(to_bytes(&CanonicalValue::from(body))))
}
