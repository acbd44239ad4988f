//! Parsing of the request head (request line and headers) with httparse, and
//! the body framing rules that protect us from request smuggling.

use super::request::{Headers, Method};

/// Most headers a request may carry; more is answered with 431.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct Head {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: Headers,
    pub keep_alive: bool,
    pub framing: Framing,
    pub expect_continue: bool,
}

/// How the body is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a head was refused. Each maps to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// More than `MAX_HEADERS` headers (431).
    TooManyHeaders,
    /// Not HTTP/1.x syntax, or contradictory framing (400).
    Malformed(&'static str),
    /// A transfer coding other than `chunked` (501).
    UnsupportedEncoding,
    /// `Expect` with something other than `100-continue` (417).
    UnsupportedExpectation,
}

/// Parses a head from the start of `buf`. `Ok(None)` means incomplete;
/// otherwise returns the head and how many bytes it took.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(_) => return Err(HeadError::Malformed("malformed HTTP request")),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line"));
    };
    let target = origin_form(target).ok_or(HeadError::Malformed("request target must be an absolute path or URI"))?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let headers = Headers::from_parsed(req.headers);

    let mut keep_alive = minor == 1;
    for value in headers.get_all("connection") {
        for token in value.split(|&b| b == b',').map(|t| t.trim_ascii()) {
            if token.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }

    let framing = framing(&headers)?;
    let expect_continue = match headers.get("expect") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case(b"100-continue") => minor == 1,
        Some(_) => return Err(HeadError::UnsupportedExpectation),
    };

    let head = Head { method: Method::from_token(method), path, query, headers, keep_alive, framing, expect_continue };
    Ok(Some((head, consumed)))
}

/// The path-and-query of a request target. Servers must accept the
/// absolute form (`GET http://host/path`, RFC 9112 §3.2.2) as well as the
/// usual origin form (`GET /path`).
fn origin_form(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let (scheme, rest) = target.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    Some(rest.find(['/', '?']).map_or("/", |at| &rest[at..])).filter(|t| t.starts_with('/'))
}

fn framing(headers: &Headers) -> Result<Framing, HeadError> {
    let mut encodings = headers.get_all("transfer-encoding").peekable();
    if encodings.peek().is_some() {
        // A request with both is the classic smuggling vector: refuse it
        // rather than pick one (RFC 9112 §6.1 allows either).
        if headers.get("content-length").is_some() {
            return Err(HeadError::Malformed("both Transfer-Encoding and Content-Length"));
        }
        let codings: Vec<&[u8]> = encodings.flat_map(|v| v.split(|&b| b == b',')).map(|t| t.trim_ascii()).collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            _ => Err(HeadError::UnsupportedEncoding),
        };
    }
    let mut length = None;
    for value in headers.get_all("content-length") {
        let n = parse_length(value).ok_or(HeadError::Malformed("invalid Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(HeadError::Malformed("conflicting Content-Length headers"));
        }
        length = Some(n);
    }
    Ok(match length {
        None | Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

/// Digits only: no sign, no spaces, no overflow.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(raw: &str) -> Head {
        parse(raw.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn partial_head_waits_for_more() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn splits_path_and_query() {
        let h = parse_ok("GET /a/b?x=1&y=2 HTTP/1.1\r\n\r\n");
        assert_eq!(h.path, "/a/b");
        assert_eq!(h.query.as_deref(), Some("x=1&y=2"));
        assert!(h.keep_alive);
        assert_eq!(h.framing, Framing::Empty);
    }

    #[test]
    fn http10_closes_unless_keep_alive_requested() {
        assert!(!parse_ok("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(parse_ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!parse_ok("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    }

    #[test]
    fn rejects_transfer_encoding_with_content_length() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        assert!(matches!(parse(raw), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn rejects_conflicting_content_lengths() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert!(matches!(parse(raw), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn rejects_signed_or_spaced_content_length() {
        for bad in ["+3", "-3", "3 4", "0x3", "99999999999999999999"] {
            let raw = format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
            assert!(matches!(parse(raw.as_bytes()), Err(HeadError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn rejects_unknown_transfer_coding() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(parse(raw).unwrap_err(), HeadError::UnsupportedEncoding);
    }

    #[test]
    fn rejects_too_many_headers() {
        let mut raw = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            raw.push_str(&format!("X-{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        assert_eq!(parse(raw.as_bytes()).unwrap_err(), HeadError::TooManyHeaders);
    }

    #[test]
    fn absolute_form_target_is_reduced_to_its_path() {
        let h = parse_ok("GET http://example.org:8008/_matrix/client/versions?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!((h.path.as_str(), h.query.as_deref()), ("/_matrix/client/versions", Some("x=1")));
        assert_eq!(parse_ok("GET https://example.org HTTP/1.1\r\n\r\n").path, "/");
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for raw in [
            &b"\x00\x01\x02\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET ftp://x/ HTTP/1.1\r\n\r\n",
            b"GET * HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
        ] {
            assert!(parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn expect_continue_is_recognised_and_others_refused() {
        assert!(parse_ok("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n").expect_continue);
        let raw = b"PUT / HTTP/1.1\r\nExpect: something\r\n\r\n";
        assert_eq!(parse(raw).unwrap_err(), HeadError::UnsupportedExpectation);
    }
}
