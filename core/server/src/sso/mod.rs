//! Single sign-on: signing users in through an outside identity provider
//! (a CAS server, as Synapse's `cas_config`), for login and for the
//! `m.login.sso` stage of user-interactive authentication.
//!
//! Spec (client-server API, "Client login via SSO"): the client sends the
//! browser to `/login/sso/redirect?redirectUrl=...`; we send it on to the
//! provider; the provider sends it back to us; we send it to `redirectUrl`
//! with a `loginToken`, which the client exchanges at `POST /login`
//! (`m.login.token`). The browser pages in between are this module's.
//!
//! Accounts: a provider's user name maps to a localpart with the spec's
//! "Mapping from other character sets" (appendices), and the account of
//! that localpart is the user's, created at the first sign-in. An existing
//! account of that name (say, one registered with a password) is taken to
//! be the same person, as Synapse does for CAS: an operator who turns CAS on
//! trusts its user names.

pub mod cas;

use quick_xml::escape::escape;
use tessera_net::http::Response;
use tessera_storage::Store;

use crate::accounts::{self, NewAccount};
use crate::config::Config;
use crate::error::ApiError;
use crate::request::query_encode;
use crate::state::AppShard;
use cas::{CasServer, CasUser};

/// The configured CAS server, if single sign-on is on.
pub fn cas_server(config: &Config) -> Option<CasServer> {
    // Checked when the configuration was loaded.
    config.cas.server_url.as_deref().and_then(|url| CasServer::parse(url).ok())
}

/// Where the provider sends the browser back to, and what for.
pub enum Back<'a> {
    /// A login, ending at the client's `redirectUrl`.
    Login { redirect_url: &'a str },
    /// The `m.login.sso` stage of UIA session `session`.
    Uia { session: &'a str },
}

/// The URL of our ticket endpoint for `back` (the CAS "service"). Built
/// the same way when the browser leaves and when the ticket is checked: the
/// CAS server compares the two. `r0`, as Synapse has always sent it.
pub fn service_url(config: &Config, back: Back<'_>) -> Result<String, ApiError> {
    let base = config
        .cas_service_base()
        .ok_or_else(|| ApiError::new(404, "M_UNRECOGNIZED", "single sign-on is not configured"))?;
    let (name, value) = match back {
        Back::Login { redirect_url } => ("redirectUrl", redirect_url),
        Back::Uia { session } => ("session", session),
    };
    Ok(format!("{base}/_matrix/client/r0/login/cas/ticket?{name}={}", query_encode(value)))
}

/// Spec (appendices, "Mapping from other character sets"): a user name
/// from elsewhere as a localpart. ASCII upper case is lowered (so `Alice`
/// and `alice` are one account), `=` and every byte not allowed in a
/// localpart become `=` and two hex digits, and a leading `_` (reserved
/// for bridges) is escaped as `=5f`.
pub fn localpart_for(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        let byte = byte.to_ascii_lowercase();
        match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' | b'+' => out.push(byte as char),
            _ => out.push_str(&format!("={byte:02x}")),
        }
    }
    match out.strip_prefix('_') {
        Some(rest) => format!("=5f{rest}"),
        None => out,
    }
}

/// Why a sign-in is refused, with the status of its page.
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }
}

/// The account a CAS user signs in to, created at the first sign-in when
/// `create` is set (a login; a UIA stage only names an existing account).
pub async fn account_of(shard: &AppShard, user: &CasUser, create: bool) -> Result<String, Refusal> {
    let config = &shard.state.config;
    for (name, wanted) in &config.cas.required_attributes {
        if !user.attributes.get(name).is_some_and(|values| values.iter().any(|v| v == wanted)) {
            return Err(Refusal::new(403, "your account is not allowed to sign in here"));
        }
    }
    let localpart = localpart_for(&user.user);
    accounts::validate_localpart(&localpart, &config.server_name).map_err(|e| Refusal::new(403, e.message))?;
    let user_id = format!("@{localpart}:{}", config.server_name);
    let vshard = shard.state.placement.vshard(&user_id);
    let existing = shard.state.store.user(vshard, &user_id).await.map_err(|e| Refusal::new(500, e.to_string()))?;
    match existing {
        Some(found) if found.deactivated => Err(Refusal::new(403, "this account has been deactivated")),
        Some(_) => Ok(user_id),
        None if !create => Ok(user_id),
        None => {
            let displayname = config
                .cas
                .displayname_attribute
                .as_ref()
                .and_then(|name| user.attributes.get(name))
                .and_then(|values| values.first().cloned());
            let account = NewAccount {
                localpart,
                password_hash: None,
                is_guest: false,
                is_admin: false,
                displayname,
                session: None,
            };
            match accounts::create(shard, account).await {
                // Created meanwhile by a second sign-in: the same account.
                Ok((user_id, _)) => Ok(user_id),
                Err(e) if e.errcode == "M_USER_IN_USE" => Ok(user_id),
                Err(e) => Err(Refusal::new(500, e.message)),
            }
        }
    }
}

/// A browser page: `status`, a title and one paragraph of already-escaped
/// HTML.
pub fn page(status: u16, title: &str, paragraph_html: &str) -> Response {
    let title = escape(title);
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n<p>{paragraph_html}</p></body></html>\n"
    );
    Response::with_status(status, "text/html; charset=utf-8", html)
        .header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        .header("X-Frame-Options", "DENY")
}

/// The page for a refused sign-in.
pub fn refusal_page(refusal: &Refusal) -> Response {
    page(refusal.status, "Sign-in failed", &escape(&refusal.reason))
}

/// A redirect for the browser.
pub fn redirect(location: &str) -> Response {
    Response::with_status(302, "text/plain", "").header("Location", location)
}

/// `redirect_url` with `loginToken` added to its query.
pub fn with_login_token(redirect_url: &str, token: &str) -> Result<String, ApiError> {
    let mut url = url::Url::parse(redirect_url).map_err(|e| ApiError::invalid_param(format!("`redirectUrl`: {e}")))?;
    url.query_pairs_mut().append_pair("loginToken", token);
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_localparts_as_the_spec_appendix_says() {
        assert_eq!(localpart_for("cas_user!"), "cas_user=21");
        assert_eq!(localpart_for("Alice.Smith"), "alice.smith");
        assert_eq!(localpart_for("a=b"), "a=3db");
        assert_eq!(localpart_for("_bridge"), "=5fbridge");
        assert_eq!(localpart_for("é"), "=c3=a9");
    }

    #[test]
    fn the_login_token_joins_the_redirect_urls_own_query() {
        assert_eq!(
            with_login_token("https://client?p=http%3A%2F%2Fserver", "tlt_X").unwrap(),
            "https://client/?p=http%3A%2F%2Fserver&loginToken=tlt_X"
        );
        assert_eq!(with_login_token("element://vector/webapp/", "T").unwrap(), "element://vector/webapp/?loginToken=T");
        assert!(with_login_token("not a url", "T").is_err());
    }
}
