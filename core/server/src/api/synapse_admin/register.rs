//! `GET` and `POST /_synapse/admin/v1/register`: shared-secret registration,
//! how operators and tools (`register_new_matrix_user`, load generators)
//! create accounts even while public registration is closed.
//!
//! Synapse's protocol: GET returns a nonce; POST carries the nonce, the
//! account and `mac`, the hex HMAC-SHA1 keyed with
//! `registration.shared_secret` over
//! `nonce NUL username NUL password NUL ("admin" | "notadmin")`.
//!
//! Synapse keeps nonces in memory; here a nonce carries its own issue time
//! and an HMAC-SHA256 of it, so any shard can check one another issued
//! without shared state. It is valid for 60 seconds.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha1::Sha1;
use sha2::Sha256;
use tessera_net::http::{Method, Request, Response, Router};

use crate::accounts::{self, password, NewAccount};
use crate::api::endpoint;
use crate::error::{ApiError, ApiResult};
use crate::request::{json_body, now_ms, random_string};
use crate::state::AppShard;

const PATH: &str = "/_synapse/admin/v1/register";

/// How long a nonce may be used.
const NONCE_VALID_MS: u64 = 60_000;

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    endpoint(router, shard, Method::Get, PATH, |shard, _| async move {
        let nonce = issue_nonce(shard.state.config.registration.shared_secret.as_bytes(), now_ms());
        Ok(Response::json(&json!({ "nonce": nonce })))
    });
    endpoint(router, shard, Method::Post, PATH, post);
}

fn nonce_tag(secret: &[u8], issued: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"tessera-admin-register-nonce\0");
    mac.update(issued.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn issue_nonce(secret: &[u8], now: u64) -> String {
    // The random part keeps two nonces of the same millisecond distinct.
    let issued = format!("{now}.{}", random_string(8));
    let tag = nonce_tag(secret, &issued);
    format!("{issued}.{tag}")
}

fn nonce_is_valid(secret: &[u8], nonce: &str, now: u64) -> bool {
    let Some((issued, tag)) = nonce.rsplit_once('.') else { return false };
    let Some(ts) = issued.split_once('.').and_then(|(ts, _)| ts.parse::<u64>().ok()) else { return false };
    constant_time_eq(nonce_tag(secret, issued).as_bytes(), tag.as_bytes()) && now.saturating_sub(ts) <= NONCE_VALID_MS
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Deserialize)]
struct Body {
    nonce: String,
    username: String,
    password: String,
    #[serde(default)]
    admin: bool,
    displayname: Option<String>,
    user_type: Option<String>,
    mac: String,
}

fn expected_mac(secret: &[u8], body: &Body) -> Hmac<Sha1> {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    for (i, part) in
        [body.nonce.as_str(), &body.username, &body.password, if body.admin { "admin" } else { "notadmin" }]
            .iter()
            .enumerate()
    {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part.as_bytes());
    }
    if let Some(user_type) = &body.user_type {
        mac.update(b"\0");
        mac.update(user_type.as_bytes());
    }
    mac
}

async fn post(shard: AppShard, req: Request) -> ApiResult {
    let body: Body = json_body(&req)?;
    let secret = shard.state.config.registration.shared_secret.as_bytes();
    if !nonce_is_valid(secret, &body.nonce, now_ms()) {
        return Err(ApiError::bad_request("unrecognised or expired nonce"));
    }
    let given = decode_hex(&body.mac).ok_or_else(|| ApiError::forbidden("HMAC incorrect"))?;
    if expected_mac(secret, &body).verify_slice(&given).is_err() {
        return Err(ApiError::forbidden("HMAC incorrect"));
    }
    let config = &shard.state.config;
    let localpart = body.username.to_lowercase();
    accounts::validate_localpart(&localpart, &config.server_name)?;
    if body.password.len() > password::MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_param("password is too long"));
    }
    let password_hash = Some(password::hash(body.password).await);
    let account = NewAccount {
        localpart,
        password_hash,
        is_guest: false,
        is_admin: body.admin,
        displayname: body.displayname,
        session: None,
    };
    let (user_id, _) = accounts::create(&shard, account).await?;
    let session = accounts::new_session(&shard, &user_id, None, None, req.client_ip.to_string(), false).await?;
    Ok(Response::json(&session.json(&user_id, &config.server_name)))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_is_accepted_for_a_minute_and_only_with_our_secret() {
        let nonce = issue_nonce(b"secret", 1_000_000);
        assert!(nonce_is_valid(b"secret", &nonce, 1_000_000 + NONCE_VALID_MS));
        assert!(!nonce_is_valid(b"secret", &nonce, 1_000_001 + NONCE_VALID_MS));
        assert!(!nonce_is_valid(b"other", &nonce, 1_000_000));
        assert!(!nonce_is_valid(b"secret", "1000000.abc.def", 1_000_000));
    }

    #[test]
    fn mac_matches_synapses_construction() {
        // Computed independently: python3 -c "import hmac,hashlib;
        // print(hmac.new(b'secret', b'n\0alice\0pw\0notadmin', hashlib.sha1).hexdigest())"
        let body = Body {
            nonce: "n".into(),
            username: "alice".into(),
            password: "pw".into(),
            admin: false,
            displayname: None,
            user_type: None,
            mac: String::new(),
        };
        let mac = hex(&expected_mac(b"secret", &body).finalize().into_bytes());
        assert_eq!(mac, EXPECTED_MAC);
    }

    const EXPECTED_MAC: &str = "bed7b1c8bbb7b4e3701c0e2242bfeab2478b3713";
}
