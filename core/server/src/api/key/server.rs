//! `GET /_matrix/key/v2/server`
//!
//! Spec (server-server-api, "Publishing Keys"): "Gets the homeserver's
//! published signing keys. The homeserver may have any number of active keys
//! and may have a number of old keys." The response is signed by every
//! current key, and `valid_until_ts` tells other servers how long they may
//! cache it.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tessera_net::http::{Method, Response, Router};
use tessera_proto::keys::server_keys_response;

use crate::state::ServerKeys;

/// How long other servers may cache our keys (Synapse's default
/// `key_refresh_interval`).
const VALIDITY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a signed response is reused before signing a fresh one, so
/// `valid_until_ts` is always at least 23 hours ahead.
const RESIGN_AFTER: Duration = Duration::from_secs(60 * 60);

/// Registers the endpoint.
pub fn register(router: &mut Router, keys: &Arc<ServerKeys>) {
    let keys = keys.clone();
    // Per shard: (signed at, response). Signing costs tens of microseconds;
    // a busy federation asks often.
    let cached: RefCell<Option<(SystemTime, Bytes)>> = RefCell::new(None);
    let serve = move |_| {
        let now = SystemTime::now();
        let fresh = cached.borrow().as_ref().and_then(|(signed_at, body)| {
            (now.duration_since(*signed_at).unwrap_or(Duration::MAX) < RESIGN_AFTER).then(|| body.clone())
        });
        let body = match fresh {
            Some(body) => body,
            None => {
                let valid_until = (now + VALIDITY).duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
                match server_keys_response(&keys.server_name, &keys.current, &keys.old, valid_until) {
                    Ok(body) => {
                        let body = Bytes::from(body);
                        *cached.borrow_mut() = Some((now, body.clone()));
                        body
                    }
                    Err(e) => return Response::error(500, "M_UNKNOWN", &format!("cannot sign key response: {e}")),
                }
            }
        };
        Response::json_bytes(body)
    };
    // The deprecated `/server/{keyID}` form gets the same answer: all keys.
    let serve = std::rc::Rc::new(serve);
    let all = serve.clone();
    router.ready(Method::Get, "/_matrix/key/v2/server", move |r| all(r));
    router.ready(Method::Get, "/_matrix/key/v2/server/{keyId}", move |r| serve(r));
}
