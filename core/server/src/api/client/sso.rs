//! The browser's side of single sign-on through CAS:
//!
//! - `GET /login/sso/redirect` (and `/login/sso/redirect/cas`, and the older
//!   `/login/cas/redirect`): spec "Client login via SSO", the browser is
//!   sent on to the CAS server.
//! - `GET /login/cas/ticket`: where the CAS server sends it back, with a
//!   ticket that we check with the CAS server. For a login, the page then
//!   hands the client a login token; for the `m.login.sso` stage of
//!   user-interactive authentication, the stage is recorded as done.
//! - `GET /auth/m.login.sso/fallback/web`: spec "Fallback", where a client
//!   sends the browser to complete the `m.login.sso` stage.
//!
//! Without `[cas] server_url` these answer 404 `M_UNRECOGNIZED`.

use quick_xml::escape::escape;
use tessera_net::http::{Method, Request, Router};

use crate::accounts::handoff;
use crate::api::client_endpoint;
use crate::error::{ApiError, ApiResult};
use crate::request::Query;
use crate::sso::{self, cas::CasServer, Back};
use crate::state::AppShard;

/// The identity provider ID clients see in the `m.login.sso` flow.
pub const CAS_IDP_ID: &str = "cas";

/// Registers the endpoints.
pub fn register(router: &mut Router, shard: &AppShard) {
    client_endpoint(router, shard, Method::Get, "/login/sso/redirect", redirect);
    client_endpoint(router, shard, Method::Get, "/login/sso/redirect/{idpId}", redirect);
    client_endpoint(router, shard, Method::Get, "/login/cas/redirect", redirect);
    client_endpoint(router, shard, Method::Get, "/login/cas/ticket", ticket);
    client_endpoint(router, shard, Method::Get, "/auth/m.login.sso/fallback/web", uia_fallback);
}

fn cas(shard: &AppShard) -> Result<CasServer, ApiError> {
    sso::cas_server(&shard.state.config)
        .ok_or_else(|| ApiError::new(404, "M_UNRECOGNIZED", "single sign-on is not configured on this server"))
}

async fn redirect(shard: AppShard, req: Request) -> ApiResult {
    let cas = cas(&shard)?;
    if let Some(idp) = req.params.first() {
        if idp != CAS_IDP_ID {
            return Err(ApiError::not_found(format!("no identity provider {idp}")));
        }
    }
    let query = Query::of(&req);
    let redirect_url = query.get("redirectUrl").ok_or_else(|| ApiError::missing_param("`redirectUrl` is required"))?;
    // Refused now rather than after the user signed in.
    sso::with_login_token(redirect_url, "")?;
    let service = sso::service_url(&shard.state.config, Back::Login { redirect_url })?;
    Ok(sso::redirect(&cas.login_url(&service)))
}

async fn uia_fallback(shard: AppShard, req: Request) -> ApiResult {
    let cas = cas(&shard)?;
    let query = Query::of(&req);
    let session = query.get("session").ok_or_else(|| ApiError::missing_param("`session` is required"))?;
    let service = sso::service_url(&shard.state.config, Back::Uia { session })?;
    Ok(sso::redirect(&cas.login_url(&service)))
}

async fn ticket(shard: AppShard, req: Request) -> ApiResult {
    let cas = cas(&shard)?;
    let query = Query::of(&req);
    let ticket = query.get("ticket").ok_or_else(|| ApiError::missing_param("`ticket` is required"))?;
    let back = match (query.get("redirectUrl"), query.get("session")) {
        (Some(redirect_url), _) => Back::Login { redirect_url },
        (None, Some(session)) => Back::Uia { session },
        (None, None) => return Err(ApiError::missing_param("`redirectUrl` or `session` is required")),
    };
    let login = matches!(back, Back::Login { .. });
    let service = sso::service_url(&shard.state.config, back)?;
    let user = match cas.validate(&shard, ticket, &service).await {
        Ok(user) => user,
        Err(reason) => {
            tracing::warn!(%reason, "CAS ticket refused");
            return Ok(sso::refusal_page(&sso::Refusal { status: 401, reason }));
        }
    };
    let user_id = match sso::account_of(&shard, &user, login).await {
        Ok(user_id) => user_id,
        Err(refusal) => return Ok(sso::refusal_page(&refusal)),
    };
    if let Some(redirect_url) = query.get("redirectUrl") {
        let token = handoff::issue_login_token(&shard, &user_id).await?;
        let target = sso::with_login_token(redirect_url, &token)?;
        // Not a redirect: a page that shows where the account is going, so
        // a link crafted by someone else cannot silently hand them a login.
        let paragraph = format!(
            "You are signed in as {}. <a href=\"{}\">Continue to your application</a> \
             (only if you started this sign-in yourself).",
            escape(&user_id),
            escape(&target)
        );
        return Ok(sso::page(200, "Signed in", &paragraph));
    }
    let session = query.get("session").unwrap_or_default();
    handoff::complete_sso_stage(&shard, session, &user_id).await?;
    let paragraph = format!(
        "You have confirmed your identity as {}. Close this window and go back to your application.",
        escape(&user_id)
    );
    Ok(sso::page(200, "Identity confirmed", &paragraph))
}
