//! The CAS protocol (Central Authentication Service, versions 2.0 and 3.0),
//! from the service's side: send the browser to the CAS server's `/login`
//! with a `service` URL; the CAS server sends it back to that URL with a
//! `ticket`; the service checks the ticket at `/proxyValidate` with the same
//! `service` and reads the user (and, in 3.0, attributes) from the XML
//! answer. The ticket check is a request from this server to the CAS
//! server, never something the browser tells us.

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;
use tessera_net::http::{Method, OutRequest, Target};
use url::Url;

use crate::request::query_encode;
use crate::state::AppShard;

/// Bytes of a ticket check's answer we read: a CAS answer is a few hundred
/// bytes; attributes can add a few KiB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A configured CAS server.
#[derive(Debug, Clone)]
pub struct CasServer {
    url: Url,
}

/// Who the CAS server says signed in.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CasUser {
    pub user: String,
    /// Attributes (CAS 3.0), each with all its values.
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl CasServer {
    /// Parses `[cas] server_url`.
    pub fn parse(server_url: &str) -> Result<Self, String> {
        let url = Url::parse(server_url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err("must be an http(s) URL with a host".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".into());
        }
        Ok(Self { url })
    }

    /// Where to send a browser to sign in, coming back to `service`.
    pub fn login_url(&self, service: &str) -> String {
        format!("{}/login?service={}", self.base(), query_encode(service))
    }

    fn base(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// Checks `ticket`, issued for `service`, with the CAS server. `Err` says
    /// why not, for the error page and the log.
    pub async fn validate(&self, shard: &AppShard, ticket: &str, service: &str) -> Result<CasUser, String> {
        let host = self.url.host_str().unwrap_or_default();
        let port = self.url.port_or_known_default().unwrap_or(443);
        let addr = crate::federation::resolve::lookup(host.trim_matches(['[', ']']), port).await?;
        let tls = self.url.scheme() == "https";
        let target = Target {
            addr,
            tls_name: tls.then(|| host.trim_matches(['[', ']']).to_owned()),
            host: match self.url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
        };
        let path = format!(
            "{}/proxyValidate?ticket={}&service={}",
            self.url.path().trim_end_matches('/'),
            query_encode(ticket),
            query_encode(service)
        );
        let request = OutRequest { method: Method::Get, path: &path, headers: &[], json: None };
        let client = &shard.state.federation.client;
        let response =
            client.send(&target, &request).await.map_err(|e| format!("the CAS server cannot be reached: {e}"))?;
        if response.status != 200 {
            return Err(format!("the CAS server answered {}", response.status));
        }
        if response.body.len() > MAX_ANSWER_BYTES {
            return Err("the CAS server's answer is too large".into());
        }
        parse_answer(&String::from_utf8_lossy(&response.body))
    }
}

/// Reads a `proxyValidate` answer: `<cas:serviceResponse>` holding either
/// `<cas:authenticationSuccess>` (with `<cas:user>` and optional
/// `<cas:attributes>`) or `<cas:authenticationFailure code="...">`.
/// Elements are matched by local name, whatever the namespace prefix.
pub fn parse_answer(xml: &str) -> Result<CasUser, String> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut found = CasUser::default();
    let mut success = false;
    let mut failure: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|e| format!("the CAS answer is not XML: {e}"))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "authenticationSuccess" {
                    success = true;
                }
                if name == "authenticationFailure" {
                    let code = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == b"code")
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                    failure = Some(code.unwrap_or_else(|| "UNKNOWN".into()));
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::CData(t) => text.push_str(&t.decode().map_err(|e| e.to_string())?),
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => text.push(c),
                    None => text.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap_or_default()),
                }
            }
            Event::End(_) => {
                let Some(name) = path.pop() else { return Err("the CAS answer is not well-formed".into()) };
                let parent = path.last().map(String::as_str);
                if name == "user" && parent == Some("authenticationSuccess") {
                    found.user = text.trim().to_owned();
                } else if parent == Some("attributes") {
                    found.attributes.entry(name).or_default().push(text.trim().to_owned());
                } else if name == "authenticationFailure" {
                    let code = failure.take().unwrap_or_default();
                    return Err(format!("the CAS server refused the ticket: {code}: {}", text.trim()));
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !success || found.user.is_empty() {
        return Err("the CAS answer names no user".into());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cas3_success_gives_the_user_and_every_attribute_value() {
        let xml = "<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'>
            <cas:authenticationSuccess>
              <cas:user>alice &amp; co</cas:user>
              <cas:attributes>
                <cas:displayName>Alice &#x41;</cas:displayName>
                <cas:memberOf>staff</cas:memberOf><cas:memberOf>admins</cas:memberOf>
              </cas:attributes>
            </cas:authenticationSuccess>
          </cas:serviceResponse>";
        let user = parse_answer(xml).unwrap();
        assert_eq!(user.user, "alice & co");
        assert_eq!(user.attributes["displayName"], ["Alice A"]);
        assert_eq!(user.attributes["memberOf"], ["staff", "admins"]);
    }

    #[test]
    fn a_failure_is_an_error_with_its_code() {
        let xml = "<cas:serviceResponse xmlns:cas='http://www.yale.edu/tp/cas'>
            <cas:authenticationFailure code=\"INVALID_TICKET\">Ticket ST-1 not recognized</cas:authenticationFailure>
          </cas:serviceResponse>";
        let err = parse_answer(xml).unwrap_err();
        assert!(err.contains("INVALID_TICKET") && err.contains("ST-1"), "{err}");
    }

    #[test]
    fn an_answer_without_a_user_or_not_xml_is_refused() {
        assert!(parse_answer("").is_err());
        assert!(parse_answer("<x><authenticationSuccess></authenticationSuccess></x>").is_err());
        assert!(parse_answer("<user>mallory</user>").is_err(), "a user outside authenticationSuccess");
        assert!(parse_answer("</a>").is_err());
    }

    #[test]
    fn the_login_url_carries_the_service_escaped_once() {
        let cas = CasServer::parse("https://cas.example.com/cas/").unwrap();
        assert_eq!(
            cas.login_url("https://hs/_matrix/client/r0/login/cas/ticket?redirectUrl=a%3Fb"),
            "https://cas.example.com/cas/login?service=https%3A%2F%2Fhs%2F_matrix%2Fclient%2Fr0%2Flogin%2Fcas%2Fticket%3FredirectUrl%3Da%253Fb"
        );
        assert!(CasServer::parse("ftp://cas").is_err());
        assert!(CasServer::parse("https://cas/x?y=1").is_err());
    }
}
