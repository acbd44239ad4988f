//! Reading requests: JSON bodies and query strings, with the spec's errors
//! for what cannot be read.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use tessera_net::http::Request;

use crate::error::ApiError;

/// Parses the body as JSON into `T`: `M_NOT_JSON` if it is not JSON (or
/// nests deeper than serde_json's limit of 128), `M_BAD_JSON` if it is JSON
/// of the wrong shape. An empty body reads as `{}`, as Synapse does for
/// endpoints whose fields are all optional.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let body: &[u8] = if req.body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &req.body };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::not_json(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::not_json("body must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::bad_json(e.to_string()))
}

/// What stays unescaped in a query value we send: RFC 3986's unreserved
/// characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `value` percent-encoded for a query string or path segment of a request
/// we send (`#`, `:`, `@`, `!` and the rest escaped).
pub fn query_encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// A request's query string, decoded.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `req`'s query string (`+` is a space, as in forms).
    pub fn of(req: &Request) -> Self {
        let Some(query) = req.query.as_deref() else { return Self(Vec::new()) };
        let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        Self(
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a parameter.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A numeric parameter: `None` when absent, `M_INVALID_PARAM` when not
    /// a number.
    pub fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| v.parse().map_err(|_| ApiError::invalid_param(format!("`{name}` must be a non-negative integer"))))
            .transpose()
    }

    /// A boolean parameter (`true`/`false`).
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid_param(format!("`{name}` must be true or false"))),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `n` random characters from `A-Za-z0-9` (device IDs, tokens, sessions).
pub fn random_string(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).expect("the OS random source failed");
    // 62 does not divide 256; the bias (4 of 256) is irrelevant at these
    // lengths (≥ 10 characters, ≥ 59 bits).
    bytes.into_iter().map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: Option<&str>, body: &str) -> Request {
        Request {
            method: tessera_net::http::Method::Post,
            path: "/".into(),
            query: query.map(Into::into),
            headers: Default::default(),
            body: body.to_owned().into(),
            peer: "127.0.0.1:1".parse().unwrap(),
            client_ip: "127.0.0.1".parse().unwrap(),
            params: Vec::new(),
        }
    }

    #[derive(serde::Deserialize, Debug)]
    struct Body {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn wrong_shape_is_bad_json_and_garbage_is_not_json() {
        assert_eq!(json_body::<Body>(&request(None, "{\"name\": 5}")).unwrap_err().errcode, "M_BAD_JSON");
        assert_eq!(json_body::<Body>(&request(None, "{nope")).unwrap_err().errcode, "M_NOT_JSON");
        assert_eq!(json_body::<Body>(&request(None, "[1]")).unwrap_err().errcode, "M_NOT_JSON");
    }

    #[test]
    fn deeply_nested_body_is_refused_not_a_stack_overflow() {
        let body = "[".repeat(100_000);
        assert_eq!(json_body::<serde_json::Value>(&request(None, &body)).unwrap_err().errcode, "M_NOT_JSON");
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Query::of(&request(Some("dir=b&from=t1%2F2&limit=5&x"), ""));
        assert_eq!(q.get("from"), Some("t1/2"));
        assert_eq!(q.number::<u32>("limit").unwrap(), Some(5));
        assert_eq!(q.get("x"), Some(""));
        assert!(q.number::<u32>("dir").is_err());
    }
}
