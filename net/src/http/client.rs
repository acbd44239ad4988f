//! HTTP/1.1 client for the requests this server makes to others
//! (federation now; push gateways and application services later).
//!
//! One [`HttpClient`] per shard: its connections are the shard's own and
//! never cross cores. Idle connections are kept per target (address and
//! TLS name) and reused; a reused connection that the peer closed meanwhile
//! is retried once on a fresh one, before any response byte was read.
//! Every request is bounded: connect and total time, head size and body
//! size, so a slow or hostile server cannot hold a shard's memory or a
//! caller forever.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio_rustls::{ClientTlsStream, TlsConnector};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::request::Method;
use crate::runtime::{timeout, Instant, TcpStream};

/// Most response headers we take.
const MAX_HEADERS: usize = 64;
/// Idle connections kept per target.
const MAX_IDLE_PER_TARGET: usize = 4;
/// Read granularity.
const READ_CHUNK: usize = 16 * 1024;

/// Bounds on every request a client makes.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Time to open a TCP connection and finish the TLS handshake.
    pub connect_timeout: Duration,
    /// Time for the whole exchange, from connecting to the body's last byte.
    pub request_timeout: Duration,
    /// Largest response head.
    pub max_head_bytes: usize,
    /// Largest response body; larger answers fail with [`ClientError::TooLarge`].
    pub max_body_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_head_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// The name the certificate must be valid for (and the SNI sent);
    /// `None` for plain HTTP.
    pub tls_name: Option<String>,
    /// The `Host` header.
    pub host: String,
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct OutRequest<'a> {
    pub method: Method,
    /// Path and query, e.g. `/_matrix/key/v2/server`.
    pub path: &'a str,
    /// Extra headers (`Authorization`, ...). `Host`, `Content-Length` and
    /// `Content-Type` (for a body) are added.
    pub headers: &'a [(&'a str, &'a str)],
    /// A JSON body.
    pub json: Option<&'a [u8]>,
}

/// A response received.
#[derive(Debug, Clone)]
pub struct OutResponse {
    pub status: u16,
    headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl OutResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Io(io::Error),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("response larger than allowed")]
    TooLarge,
}

/// The connection types a client holds.
enum Conn {
    Plain(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
}

impl Conn {
    async fn write_all(&mut self, buf: Vec<u8>) -> io::Result<()> {
        let (result, _) = match self {
            Conn::Plain(s) => s.write_all(buf).await,
            Conn::Tls(s) => s.write_all(buf).await,
        };
        result.map(drop)
    }

    /// Appends what arrives to `buf`; 0 means the peer closed.
    async fn read_some(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        use monoio::buf::IoBufMut;
        buf.reserve(READ_CHUNK);
        let (len, cap) = (buf.len(), buf.capacity());
        let owned = std::mem::take(buf);
        let (result, slice) = match self {
            Conn::Plain(s) => s.read(owned.slice_mut(len..cap)).await,
            Conn::Tls(s) => s.read(owned.slice_mut(len..cap)).await,
        };
        *buf = slice.into_inner();
        result
    }
}

/// A shard's HTTP client.
pub struct HttpClient {
    tls: TlsConnector,
    limits: ClientLimits,
    idle: RefCell<HashMap<Target, Vec<Conn>>>,
}

impl HttpClient {
    /// A client that trusts `tls`'s roots (see [`client_tls_config`]).
    pub fn new(tls: Arc<ClientConfig>, limits: ClientLimits) -> Self {
        Self { tls: TlsConnector::from(tls), limits, idle: RefCell::new(HashMap::new()) }
    }

    /// Sends `request` to `target` and reads the whole response.
    pub async fn send(&self, target: &Target, request: &OutRequest<'_>) -> Result<OutResponse, ClientError> {
        let deadline = Instant::now() + self.limits.request_timeout;
        let head = request_head(target, request);
        let reused = self.idle.borrow_mut().get_mut(target).and_then(Vec::pop);
        if let Some(conn) = reused {
            match self.exchange(conn, target, &head, request.json, deadline, true).await {
                Err(Retry::Fresh) => {}
                Err(Retry::No(e)) => return Err(e),
                Ok(response) => return Ok(response),
            }
        }
        let conn = within(deadline, self.connect(target)).await??;
        match self.exchange(conn, target, &head, request.json, deadline, false).await {
            Ok(response) => Ok(response),
            Err(Retry::No(e)) => Err(e),
            Err(Retry::Fresh) => Err(ClientError::Io(io::ErrorKind::ConnectionReset.into())),
        }
    }

    async fn connect(&self, target: &Target) -> Result<Conn, ClientError> {
        let connect = async {
            let tcp = TcpStream::connect(target.addr).await.map_err(ClientError::Connect)?;
            let _ = tcp.set_nodelay(true);
            let Some(name) = &target.tls_name else { return Ok(Conn::Plain(tcp)) };
            let name = ServerName::try_from(name.clone()).map_err(|e| ClientError::Tls(e.to_string()))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| ClientError::Tls(e.to_string()))?;
            Ok(Conn::Tls(Box::new(tls)))
        };
        timeout(self.limits.connect_timeout, connect).await.map_err(|_| ClientError::Timeout)?
    }

    /// One request on `conn`; keeps the connection for reuse when the
    /// response allows it.
    async fn exchange(
        &self,
        mut conn: Conn,
        target: &Target,
        head: &[u8],
        body: Option<&[u8]>,
        deadline: Instant,
        reused: bool,
    ) -> Result<OutResponse, Retry> {
        let mut out = Vec::with_capacity(head.len() + body.map_or(0, <[u8]>::len));
        out.extend_from_slice(head);
        out.extend_from_slice(body.unwrap_or_default());
        let stale = |e: ClientError| if reused { Retry::Fresh } else { Retry::No(e) };
        within(deadline, conn.write_all(out)).await.map_err(Retry::No)?.map_err(|e| stale(ClientError::Io(e)))?;
        let mut buf = Vec::new();
        let (response, keep) = loop {
            match parse_head(&buf, self.limits.max_head_bytes).map_err(Retry::No)? {
                Some(parsed) => break parsed,
                None => {
                    let n = within(deadline, conn.read_some(&mut buf)).await.map_err(Retry::No)?;
                    match n {
                        Ok(0) if buf.is_empty() => {
                            return Err(stale(ClientError::Io(io::ErrorKind::UnexpectedEof.into())))
                        }
                        Ok(0) => return Err(Retry::No(ClientError::Malformed("connection closed inside the head"))),
                        Ok(_) => {}
                        Err(e) if buf.is_empty() => return Err(stale(ClientError::Io(e))),
                        Err(e) => return Err(Retry::No(ClientError::Io(e))),
                    }
                }
            }
        };
        let (mut response, used, framing) = response;
        buf.drain(..used);
        let limit = self.limits.max_body_bytes;
        let complete = match framing {
            BodyFraming::Length(len) => {
                let len = usize::try_from(len).ok().filter(|&l| l <= limit).ok_or(Retry::No(ClientError::TooLarge))?;
                while buf.len() < len {
                    let n = within(deadline, conn.read_some(&mut buf)).await.map_err(Retry::No)?;
                    if n.map_err(|e| Retry::No(ClientError::Io(e)))? == 0 {
                        return Err(Retry::No(ClientError::Malformed("connection closed inside the body")));
                    }
                }
                let extra = buf.len() > len;
                buf.truncate(len);
                response.body = buf;
                !extra
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new(limit);
                let mut body = Vec::new();
                let mut pending = buf;
                loop {
                    let used = decoder.feed(&pending, &mut body).map_err(|e| {
                        Retry::No(match e {
                            ChunkedError::TooLarge => ClientError::TooLarge,
                            ChunkedError::Malformed => ClientError::Malformed("bad chunked body"),
                        })
                    })?;
                    pending.drain(..used);
                    if decoder.is_done() {
                        break;
                    }
                    let n = within(deadline, conn.read_some(&mut pending)).await.map_err(Retry::No)?;
                    if n.map_err(|e| Retry::No(ClientError::Io(e)))? == 0 {
                        return Err(Retry::No(ClientError::Malformed("connection closed inside the body")));
                    }
                }
                response.body = body;
                pending.is_empty()
            }
            BodyFraming::UntilClose => {
                loop {
                    if buf.len() > limit {
                        return Err(Retry::No(ClientError::TooLarge));
                    }
                    let n = within(deadline, conn.read_some(&mut buf)).await.map_err(Retry::No)?;
                    if n.map_err(|e| Retry::No(ClientError::Io(e)))? == 0 {
                        break;
                    }
                }
                response.body = buf;
                false
            }
        };
        if keep && complete {
            let mut idle = self.idle.borrow_mut();
            let conns = idle.entry(target.clone()).or_default();
            if conns.len() < MAX_IDLE_PER_TARGET {
                conns.push(conn);
            }
        }
        Ok(response)
    }
}

/// Whether a failed exchange may be tried again on a fresh connection.
enum Retry {
    /// The reused connection was dead before anything was read.
    Fresh,
    No(ClientError),
}

async fn within<T>(deadline: Instant, f: impl std::future::Future<Output = T>) -> Result<T, ClientError> {
    timeout(deadline.saturating_duration_since(Instant::now()), f).await.map_err(|_| ClientError::Timeout)
}

fn request_head(target: &Target, request: &OutRequest<'_>) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(request.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(request.path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend_from_slice(target.host.as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in request.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if let Some(body) = request.json {
        // Exactly this spelling: some servers (SyTest's fakes) accept no other.
        head.extend_from_slice(b"Content-Type: application/json\r\n");
        head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    } else if matches!(request.method, Method::Post | Method::Put) {
        head.extend_from_slice(b"Content-Length: 0\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    Length(u64),
    Chunked,
    UntilClose,
}

type ParsedHead = ((OutResponse, usize, BodyFraming), bool);

/// Parses a response head from `buf`: `None` while incomplete. Interim
/// (1xx) responses are not expected: we never send `Expect`.
fn parse_head(buf: &[u8], max: usize) -> Result<Option<ParsedHead>, ClientError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let used = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > max => return Err(ClientError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ClientError::Malformed("not an HTTP/1.x response")),
    };
    let status = parsed.code.ok_or(ClientError::Malformed("no status"))?;
    let headers: Vec<(String, Vec<u8>)> =
        parsed.headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect();
    let find = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice());
    let has_token = |name: &str, token: &str| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    let framing = if status == 204 || status == 304 {
        BodyFraming::Length(0)
    } else if find("transfer-encoding").is_some() {
        if !has_token("transfer-encoding", "chunked") {
            return Err(ClientError::Malformed("unsupported transfer coding"));
        }
        BodyFraming::Chunked
    } else if let Some(len) = find("content-length") {
        let len = std::str::from_utf8(len).ok().and_then(|l| l.trim().parse().ok());
        BodyFraming::Length(len.ok_or(ClientError::Malformed("bad Content-Length"))?)
    } else {
        BodyFraming::UntilClose
    };
    let keep = parsed.version == Some(1) && !has_token("connection", "close") && framing != BodyFraming::UntilClose;
    Ok(Some(((OutResponse { status, headers, body: Vec::new() }, used, framing), keep)))
}

/// TLS settings for outbound connections: the Mozilla roots that
/// `webpki-roots` carries (no dependence on the machine's certificate
/// files), plus the CA certificates in `extra_ca_files` (PEM), for private
/// federations and test networks.
pub fn client_tls_config(extra_ca_files: &[impl AsRef<Path>]) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?
        .with_root_certificates(root_store(extra_ca_files)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The roots of [`client_tls_config`]: the public ones and those in
/// `extra_ca_files` (PEM).
pub fn root_store(extra_ca_files: &[impl AsRef<Path>]) -> io::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for path in extra_ca_files {
        let path = path.as_ref();
        let invalid =
            |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()));
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| invalid(&e))? {
            roots.add(cert.map_err(|e| invalid(&e))?).map_err(|e| invalid(&e))?;
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_head_gives_status_framing_and_whether_to_keep_the_connection() {
        let ((r, used, framing), keep) =
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 1024).unwrap().unwrap();
        assert_eq!((r.status, used, framing, keep), (200, 38, BodyFraming::Length(2), true));
        let ((_, _, framing), keep) =
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", 1024)
                .unwrap()
                .unwrap();
        assert_eq!((framing, keep), (BodyFraming::Chunked, false));
        let ((_, _, framing), keep) = parse_head(b"HTTP/1.0 200 OK\r\n\r\n", 1024).unwrap().unwrap();
        assert_eq!((framing, keep), (BodyFraming::UntilClose, false));
    }

    #[test]
    fn an_endless_or_garbled_head_is_refused() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n", 1024).unwrap().is_none());
        assert!(matches!(parse_head(&[b'x'; 2048], 1024), Err(ClientError::Malformed(_))));
        let long = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; 2048]].concat();
        assert!(matches!(parse_head(&long, 1024), Err(ClientError::TooLarge)));
        let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert!(matches!(parse_head(gzip, 1024), Err(ClientError::Malformed(_))));
    }

    #[test]
    fn the_request_head_carries_host_length_and_the_exact_json_content_type() {
        let target = Target { addr: "127.0.0.1:1".parse().unwrap(), tls_name: None, host: "a.example:8448".into() };
        let request =
            OutRequest { method: Method::Put, path: "/x?y=1", headers: &[("Authorization", "X")], json: Some(b"{}") };
        let head = String::from_utf8(request_head(&target, &request)).unwrap();
        assert_eq!(
            head,
            "PUT /x?y=1 HTTP/1.1\r\nHost: a.example:8448\r\nAuthorization: X\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        );
    }
}
