//! Requests to other servers, signed with `X-Matrix` (server-server API §
//! Request Authentication).

use tessera_net::http::{Method, OutRequest, OutResponse};
use tessera_proto::canonical_json::{to_bytes, Value as CanonicalValue};
use tessera_proto::request_auth::sign_request;

use super::{resolve, FedError};
use crate::state::AppShard;

/// Sends a signed request to `destination` and returns its JSON answer;
/// an error status becomes [`FedError::Status`]. `path` is the path with
/// its query string, already percent-encoded.
pub async fn request(
    shard: &AppShard,
    destination: &str,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<serde_json::Value, FedError> {
    let invalid = |reason: String| FedError::Invalid { server: destination.to_owned(), reason };
    let content = match body {
        Some(body) => Some(CanonicalValue::try_from(body.clone()).map_err(|e| invalid(format!("our body: {e}")))?),
        None => None,
    };
    let keys = &shard.state.keys;
    let origin = keys.server_name.as_str();
    let auth = sign_request(method.as_str(), path, origin, destination, content.as_ref(), &keys.current[0]);
    let header = auth.to_header();
    let json = content.as_ref().map(to_bytes);
    let request = OutRequest { method, path, headers: &[("Authorization", &header)], json: json.as_deref() };
    answer(destination, send_to(shard, destination, &request).await?)
}

/// Sends `request` as it is (signed or not) to where `server` resolves.
pub async fn send_to(shard: &AppShard, server: &str, request: &OutRequest<'_>) -> Result<OutResponse, FedError> {
    let target = resolve::resolve(shard, server).await?;
    let client = &shard.state.federation.client;
    client.send(&target, request).await.map_err(|source| FedError::Http { server: server.to_owned(), source })
}

/// The JSON body of a 2xx answer, or the error the remote gave.
fn answer(server: &str, response: OutResponse) -> Result<serde_json::Value, FedError> {
    let body: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
    if (200..300).contains(&response.status) {
        return body
            .ok_or_else(|| FedError::Invalid { server: server.to_owned(), reason: "answer is not JSON".into() });
    }
    let mut fields = match body {
        Some(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    let mut take = |name: &str| match fields.remove(name) {
        Some(serde_json::Value::String(value)) => value,
        _ => String::new(),
    };
    let (errcode, message) = (take("errcode"), take("error"));
    Err(FedError::Status { server: server.to_owned(), status: response.status, errcode, message, extra: fields })
}

/// A `PUT` to a v2 endpoint (`path` with `/v2/`), falling back to its v1
/// form (`v1_body`, answer wrapped as `[200, {...}]`) when the server does
/// not know v2 (404 or 400 `M_UNRECOGNIZED`), as Synapse falls back for
/// `send_join`, `send_leave` and `invite`.
pub async fn put_v2_or_v1(
    shard: &AppShard,
    destination: &str,
    path_v2: &str,
    body_v2: &serde_json::Value,
    body_v1: &serde_json::Value,
) -> Result<serde_json::Value, FedError> {
    match request(shard, destination, Method::Put, path_v2, Some(body_v2)).await {
        Err(FedError::Status { status, errcode, .. }) if status == 404 || errcode == "M_UNRECOGNIZED" => {
            let path_v1 = path_v2.replacen("/v2/", "/v1/", 1);
            let answer = request(shard, destination, Method::Put, &path_v1, Some(body_v1)).await?;
            match answer {
                serde_json::Value::Array(mut pair) if pair.len() == 2 => Ok(pair.swap_remove(1)),
                _ => Err(FedError::Invalid {
                    server: destination.to_owned(),
                    reason: "a v1 answer is not [200, {...}]".into(),
                }),
            }
        }
        other => other,
    }
}
