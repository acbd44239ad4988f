//! Responses and their serialisation, including the JSON error envelope and
//! the CORS headers every response carries.

use bytes::Bytes;

/// The CORS headers the Client-Server API recommends on every response
/// ("Web Browser Clients"), so browser clients such as Element Web can call
/// us from another origin.
const CORS_HEADERS: &str = "Access-Control-Allow-Origin: *\r\n\
     Access-Control-Allow-Methods: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n\
     Access-Control-Allow-Headers: X-Requested-With, Content-Type, Authorization\r\n";

/// An HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Additional headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// A `200 application/json` response from already-serialised JSON.
    pub fn json_bytes(body: impl Into<Bytes>) -> Self {
        Self::with_status(200, "application/json", body)
    }

    /// A `200 application/json` response serialising `value`.
    pub fn json(value: &impl serde::Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::json_bytes(body),
            Err(e) => Self::error(500, "M_UNKNOWN", &format!("response serialisation failed: {e}")),
        }
    }

    /// A response with any status, content type and body.
    pub fn with_status(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self { status, content_type, headers: Vec::new(), body: body.into() }
    }

    /// The spec's standard error response: `{"errcode": …, "error": …}`.
    pub fn error(status: u16, errcode: &str, message: &str) -> Self {
        let body = serde_json::json!({ "errcode": errcode, "error": message });
        Self::with_status(status, "application/json", body.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Appends the status line, headers and (unless `head_only`) the body to
    /// `out`.
    ///
    /// Plain byte appends rather than `write!`: this runs once per request.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, head_only: bool) {
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(digits.format(self.status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason(self.status).as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(self.content_type.as_bytes());
        out.extend_from_slice(b"\r\nContent-Length: ");
        out.extend_from_slice(digits.format(self.body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        super::date::append_header(out);
        out.extend_from_slice(CORS_HEADERS.as_bytes());
        for (name, value) in &self.headers {
            for part in [name.as_bytes(), b": ", value.as_bytes(), b"\r\n"] {
                out.extend_from_slice(part);
            }
        }
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

/// The answer to a CORS preflight (`OPTIONS` on any path).
pub(crate) fn preflight() -> Response {
    Response::with_status(204, "text/plain", Bytes::new())
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_escapes_message_as_json() {
        let r = Response::error(400, "M_BAD_JSON", "bad \"quote\"\n");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["errcode"], "M_BAD_JSON");
        assert_eq!(v["error"], "bad \"quote\"\n");
    }

    #[test]
    fn head_response_keeps_length_but_omits_body() {
        let mut out = Vec::new();
        Response::json_bytes(&b"{\"a\":1}"[..]).write_to(&mut out, true, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Length: 7\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn closing_response_says_connection_close() {
        let mut out = Vec::new();
        Response::error(413, "M_TOO_LARGE", "too large").write_to(&mut out, false, false);
        assert!(String::from_utf8(out).unwrap().contains("Connection: close\r\n"));
    }
}
