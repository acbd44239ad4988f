//! Checking that a request really comes from the server it names (spec:
//! server-server API § Request Authentication): "Every HTTP request made by
//! a homeserver is authenticated using public key digital signatures."
//! Until its signature checks out, nothing in a request is trusted.

use tessera_net::http::Request;
use tessera_proto::canonical_json::{parse_with, Numbers};
use tessera_proto::identifiers::ServerName;
use tessera_proto::request_auth::{verify_request, XMatrix};

use super::keys::key_for;
use crate::error::ApiError;
use crate::state::AppShard;

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(401, "M_UNAUTHORIZED", message)
}

/// The name of the server that signed `req`, once its `X-Matrix` signature
/// is verified against that server's key.
pub async fn authenticate(shard: &AppShard, req: &Request) -> Result<String, ApiError> {
    let header = req
        .headers
        .get_all("authorization")
        .find(|h| h.len() > 9 && h[..9].eq_ignore_ascii_case(b"X-Matrix "))
        .ok_or_else(|| unauthorized("Missing X-Matrix Authorization header"))?;
    let auth = XMatrix::parse(header).map_err(|e| unauthorized(e.to_string()))?;
    let us = shard.state.keys.server_name.as_str();
    if auth.destination.as_deref().is_some_and(|d| d != us) {
        return Err(unauthorized(format!("request is for {}, not this server", auth.destination.unwrap_or_default())));
    }
    // A malformed origin is a bad request, not a failed signature (as
    // Synapse answers; SyTest: "Non-numeric ports in server names are
    // rejected").
    ServerName::parse(&auth.origin).map_err(|e| ApiError::invalid_param(format!("origin: {e}")))?;
    // Bodies may carry events of old room versions, whose numbers need not
    // be canonical: the signature is over whatever the sender canonicalised.
    let content = if req.body.is_empty() {
        None
    } else {
        Some(parse_with(&req.body, Numbers::Lax).map_err(|e| ApiError::not_json(format!("body: {e}")))?)
    };
    let keys = key_for(shard, &auth.origin, &auth.key)
        .await
        .map_err(|e| unauthorized(format!("cannot get the key {} of {}: {e}", auth.key, auth.origin)))?;
    let uri = match &req.query {
        Some(query) => format!("{}?{query}", req.path),
        None => req.path.clone(),
    };
    verify_request(&auth, req.method.as_str(), &uri, us, content.as_ref(), &keys)
        .map_err(|e| unauthorized(format!("bad signature: {e}")))?;
    Ok(auth.origin)
}
