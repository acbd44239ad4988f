//! A small HTTP/1.1 client on monoio's `TcpStream`: one persistent
//! keep-alive connection, one request in flight at a time.
//!
//! Written here rather than taken from a client library because the client
//! must cost less than the server it measures: no connection pool, no
//! header maps, no per-request allocations beyond the body. Responses are
//! parsed with httparse; bodies are framed by `Content-Length` or chunked
//! transfer coding (Synapse uses both).

use std::fmt;
use std::io;
use std::net::SocketAddr;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use tessera_net::runtime::{timeout, Duration, TcpStream};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest response body accepted (an initial /sync of many rooms is big).
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// A parsed response.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The server asked to close the connection after this response.
    pub close: bool,
    /// The decoded body.
    pub body: Vec<u8>,
}

/// Why a request failed, by kind: the kinds are what the error counts of the
/// summary are keyed by.
#[derive(Debug)]
pub enum HttpError {
    /// Could not connect.
    Connect(io::Error),
    /// Reading or writing failed, or the server closed mid-response.
    Io(io::Error),
    /// The response was not valid HTTP/1.1 or was too large.
    Parse(String),
    /// No complete response within the request time-out.
    Timeout,
}

impl HttpError {
    /// A short stable name for the error counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Io(_) => "io",
            Self::Parse(_) => "bad_response",
            Self::Timeout => "timeout",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Io(e) => write!(f, "i/o: {e}"),
            Self::Parse(e) => write!(f, "bad response: {e}"),
            Self::Timeout => f.write_str("timed out"),
        }
    }
}

/// What [`parse_response`] makes of the bytes received so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A complete response, and how many bytes of the buffer it used.
    Complete(Response, usize),
}

/// Parses one response from the front of `buf`.
///
/// Called again after every read, so it decides completeness by walking
/// chunk headers without copying and copies the body once, at the end.
pub fn parse_response(buf: &[u8], head_request: bool) -> Result<Parsed, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err("response head too large".into()),
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.code.unwrap_or(0);
    let mut close = resp.version == Some(0);
    let mut content_length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
            content_length = Some(len.ok_or("bad Content-Length")?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.eq_ignore_ascii_case(b"chunked") || h.value.ends_with(b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
    }
    let body_start = &buf[head_len..];
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Parsed::Complete(Response { status, close, body: Vec::new() }, head_len));
    }
    if chunked {
        return Ok(match decode_chunked(body_start)? {
            Some((body, used)) => Parsed::Complete(Response { status, close, body }, head_len + used),
            None => Parsed::Partial,
        });
    }
    let Some(len) = content_length else {
        // Body until close: we cannot reuse such a connection and never
        // expect one from a homeserver.
        return Err("response without Content-Length or chunked coding".into());
    };
    if len > MAX_BODY {
        return Err(format!("response body of {len} bytes is too large"));
    }
    if body_start.len() < len {
        return Ok(Parsed::Partial);
    }
    Ok(Parsed::Complete(Response { status, close, body: body_start[..len].to_vec() }, head_len + len))
}

/// Decodes a chunked body from the front of `buf`: `None` while incomplete,
/// else the body and the bytes used (through the trailer's empty line).
fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    // First pass: find every chunk without copying.
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut total = 0usize;
    loop {
        let Some(line_end) = find_crlf(&buf[pos..]) else { return Ok(None) };
        let line = &buf[pos..pos + line_end];
        let size_hex = line.split(|&b| b == b';').next().unwrap_or_default();
        let size_str = std::str::from_utf8(size_hex).map_err(|_| "bad chunk size")?.trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| format!("bad chunk size {size_str:?}"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(end) = find_crlf(&buf[pos..]) else { return Ok(None) };
                pos += end + 2;
                if end == 0 {
                    break;
                }
            }
            break;
        }
        total = total.checked_add(size).filter(|&t| t <= MAX_BODY).ok_or("chunked body too large")?;
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".into());
        }
        chunks.push(pos..pos + size);
        pos += size + 2;
    }
    let mut body = Vec::with_capacity(total);
    for c in chunks {
        body.extend_from_slice(&buf[c]);
    }
    Ok(Some((body, pos)))
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// One keep-alive connection to the target, (re)connected on demand.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    /// Bytes read but not yet consumed (a response is never pipelined, but a
    /// read may still end in the middle of one).
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    timeout: Duration,
}

impl Conn {
    /// A connection to `addr`, not yet connected; `host` goes in the `Host`
    /// header, `timeout` bounds each request.
    pub fn new(addr: SocketAddr, host: &str, timeout: Duration) -> Self {
        Self {
            addr,
            host: host.to_owned(),
            stream: None,
            rbuf: Vec::with_capacity(READ_CHUNK),
            wbuf: Vec::with_capacity(1024),
            timeout,
        }
    }

    /// Sends one request and reads its response. `body` is JSON when given.
    ///
    /// A reused connection that the server closed while idle fails the first
    /// write or read with nothing received; that request is retried once on
    /// a fresh connection, as every HTTP client does, so that keep-alive
    /// time-outs do not show up as errors.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        self.wbuf.clear();
        self.wbuf.extend_from_slice(method.as_bytes());
        self.wbuf.push(b' ');
        self.wbuf.extend_from_slice(path.as_bytes());
        self.wbuf.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.wbuf.extend_from_slice(self.host.as_bytes());
        self.wbuf.extend_from_slice(b"\r\nUser-Agent: tessera-loadtest\r\n");
        if let Some(token) = token {
            self.wbuf.extend_from_slice(b"Authorization: Bearer ");
            self.wbuf.extend_from_slice(token.as_bytes());
            self.wbuf.extend_from_slice(b"\r\n");
        }
        if let Some(body) = body {
            self.wbuf.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: ");
            self.wbuf.extend_from_slice(body.len().to_string().as_bytes());
            self.wbuf.extend_from_slice(b"\r\n\r\n");
            self.wbuf.extend_from_slice(body);
        } else {
            self.wbuf.extend_from_slice(b"\r\n");
        }
        let head = method == "HEAD";
        match timeout(self.timeout, self.exchange(head)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err((_, true))) => {
                self.stream = None;
                match timeout(self.timeout, self.exchange(head)).await {
                    Ok(r) => r.map_err(|(e, _)| e),
                    Err(_) => {
                        self.stream = None;
                        Err(HttpError::Timeout)
                    }
                }
            }
            Ok(Err((e, _))) => Err(e),
            Err(_) => {
                self.stream = None;
                Err(HttpError::Timeout)
            }
        }
    }

    /// Writes `wbuf` and reads one response. On failure, says whether the
    /// request may be retried (a reused connection, nothing received).
    async fn exchange(&mut self, head: bool) -> Result<Response, (HttpError, bool)> {
        let reused = self.stream.is_some();
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await.map_err(|e| (HttpError::Connect(e), false))?;
            stream.set_nodelay(true).map_err(|e| (HttpError::Connect(e), false))?;
            self.stream = Some(stream);
            self.rbuf.clear();
        }
        let result = self.exchange_on_stream(head).await;
        match result {
            Ok(resp) => {
                if resp.close {
                    self.stream = None;
                }
                Ok(resp)
            }
            Err((e, received)) => {
                self.stream = None;
                Err((e, reused && !received))
            }
        }
    }

    /// The exchange proper; on failure, says whether any response byte came.
    async fn exchange_on_stream(&mut self, head: bool) -> Result<Response, (HttpError, bool)> {
        let stream = self.stream.as_mut().expect("connected above");
        let wbuf = std::mem::take(&mut self.wbuf);
        let (res, wbuf) = stream.write_all(wbuf).await;
        self.wbuf = wbuf;
        res.map_err(|e| (HttpError::Io(e), false))?;
        loop {
            if !self.rbuf.is_empty() {
                match parse_response(&self.rbuf, head) {
                    Ok(Parsed::Complete(resp, used)) => {
                        self.rbuf.drain(..used);
                        return Ok(resp);
                    }
                    Ok(Parsed::Partial) => {}
                    Err(e) => return Err((HttpError::Parse(e), true)),
                }
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                self.rbuf.reserve(READ_CHUNK.max(self.rbuf.len()));
            }
            let buf = std::mem::take(&mut self.rbuf);
            let (len, cap) = (buf.len(), buf.capacity());
            let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
            self.rbuf = slice.into_inner();
            match res {
                Ok(0) => {
                    let received = !self.rbuf.is_empty();
                    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection");
                    return Err((HttpError::Io(e), received));
                }
                Ok(_) => {}
                Err(e) => {
                    let received = !self.rbuf.is_empty();
                    return Err((HttpError::Io(e), received));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Response, usize) {
        match parse_response(buf, false).unwrap() {
            Parsed::Complete(r, n) => (r, n),
            Parsed::Partial => panic!("partial: {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn content_length_response() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}NEXT";
        let (r, n) = complete(raw);
        assert_eq!((r.status, r.close, r.body.as_slice(), n), (200, false, &b"{}"[..], raw.len() - 4));
        // Every prefix short of the full response is partial.
        for cut in 0..raw.len() - 4 {
            assert_eq!(parse_response(&raw[..cut], false).unwrap(), Parsed::Partial, "cut at {cut}");
        }
    }

    #[test]
    fn chunked_response_with_extensions_and_trailer() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n\
                    4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\n";
        let (r, n) = complete(raw);
        assert_eq!((r.status, r.body.as_slice(), n), (401, &b"{\"a\":1}"[..], raw.len()));
        for cut in 0..raw.len() {
            assert_eq!(parse_response(&raw[..cut], false).unwrap(), Parsed::Partial, "cut at {cut}");
        }
    }

    #[test]
    fn chunked_body_split_exactly_at_chunk_boundaries() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n";
        assert_eq!(complete(raw).0.body, b"ab");
    }

    #[test]
    fn connection_close_and_http_1_0() {
        let (r, _) = complete(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(r.close);
        let (r, _) = complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(r.close);
        let (r, _) = complete(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(!r.close);
    }

    #[test]
    fn bodiless_statuses_and_head() {
        let (r, n) = complete(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((r.status, n), (204, 27));
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
        assert!(matches!(parse_response(raw, true).unwrap(), Parsed::Complete(_, n) if n == raw.len()));
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\nbody", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", false).is_err());
        assert!(parse_response(b"NOT HTTP\r\n\r\n", false).is_err());
    }

    #[test]
    fn client_round_trip_over_keep_alive_and_reconnect() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Serves two requests on the first connection, then closes it; the
        // client's third request must go through on a new connection.
        let server = std::thread::spawn(move || {
            for served_on_conn in [2, 1] {
                let (mut s, _) = listener.accept().unwrap();
                for _ in 0..served_on_conn {
                    let mut req = Vec::new();
                    let mut byte = [0u8; 1];
                    while !req.ends_with(b"\r\n\r\n") {
                        s.read_exact(&mut byte).unwrap();
                        req.push(byte[0]);
                    }
                    let text = String::from_utf8(req).unwrap();
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    let mut body = vec![0; len];
                    s.read_exact(&mut body).unwrap();
                    s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n").unwrap();
                }
            }
        });
        tessera_net::runtime::build_shard_runtime().unwrap().block_on(async move {
            let mut conn = Conn::new(addr, "127.0.0.1", Duration::from_secs(5));
            for i in 0..3 {
                let body = (i == 1).then_some(&b"{\"x\":1}"[..]);
                let r = conn.request("POST", "/x", Some("tok"), body).await.unwrap();
                assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]), "request {i}");
            }
        });
        server.join().unwrap();
    }
}
