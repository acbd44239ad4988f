//! One HTTP/1.1 connection: keep-alive, pipelining, bodies, limits.
//!
//! HOT PATH. Runs on a shard's reactor: no blocking calls, no locks.
//!
//! Requests are answered strictly in order. Pipelined requests already in
//! the read buffer are all answered before anything is written, so a burst
//! of N requests costs one write. Every wait has a deadline: the idle
//! time-out between requests, the request time-out from a request's first
//! byte until its body is complete (so a client trickling bytes cannot hold
//! memory for long), and the same time-out for writes to a client that does
//! not read.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::chunked::{ChunkedDecoder, ChunkedError};
use super::head::{self, Framing, Head, HeadError};
use super::request::{Method, Request};
use super::response::{preflight, Response};
use super::router::{Handler, Route};
use super::server::Listener;
use crate::runtime::{timeout, Instant};

/// Bytes a connection reads at a time while waiting for a request head;
/// the buffer grows up to the header limit or the body size.
const READ_BUF: usize = 8 * 1024;
/// Write out what has accumulated once it passes this size, even while
/// pipelined requests remain.
const FLUSH_AT: usize = 64 * 1024;

/// Why a connection ends.
enum Close {
    /// The peer closed, timed out, or an I/O error happened: nothing more to
    /// say to it.
    Quietly,
    /// Answer this error, then close.
    With(Response),
}

struct Conn<'l, S> {
    stream: S,
    listener: &'l Listener,
    peer: SocketAddr,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    start: usize,
    out: Vec<u8>,
    /// Deadline of the request being received, once its first byte is in.
    deadline: Option<Instant>,
}

/// Serves requests on `stream` until the peer leaves, a limit is hit, or the
/// shard shuts down.
pub(crate) async fn serve<S: AsyncReadRent + AsyncWriteRent>(stream: S, peer: SocketAddr, listener: &Listener) {
    let mut conn = Conn { stream, listener, peer, buf: Vec::new(), start: 0, out: Vec::new(), deadline: None };
    if let Close::With(response) = conn.run().await {
        conn.listener.metrics.record(conn.listener.metrics.unmatched(), response.status, Default::default());
        response.write_to(&mut conn.out, false, false);
    }
    if !conn.out.is_empty() {
        let _ = conn.flush().await;
    }
    let _ = conn.stream.shutdown().await;
}

impl<S: AsyncReadRent + AsyncWriteRent> Conn<'_, S> {
    async fn run(&mut self) -> Close {
        loop {
            let head = match self.next_head().await {
                Ok(head) => head,
                Err(close) => return close,
            };
            let started = Instant::now();
            let keep_alive = head.keep_alive && !self.listener.shutdown.is_triggered();
            let head_only = head.method == Method::Head;

            let (row, response, body_read) = match self.answer(head, started).await {
                Ok(answer) => answer,
                Err(close) => return close,
            };
            // A body we chose not to read leaves the stream mid-request.
            let keep_alive = keep_alive && body_read;
            self.listener.metrics.record(row, response.status, started.elapsed());
            response.write_to(&mut self.out, keep_alive, head_only);
            if !keep_alive {
                return Close::Quietly;
            }
            if self.out.len() >= FLUSH_AT && self.flush().await.is_err() {
                return Close::Quietly;
            }
        }
    }

    /// Routes a request, reads its body and runs its handler. Returns the
    /// metrics row, the response, and whether the body was read (if not, the
    /// connection cannot carry another request).
    async fn answer(&mut self, head: Head, started: Instant) -> Result<(usize, Response, bool), Close> {
        let listener = self.listener;
        let route = (head.method != Method::Options).then(|| listener.router.lookup(head.method, &head.path));
        let (endpoint, params) = match route {
            Some(Route::Found(endpoint, params)) => (endpoint, params),
            other => {
                let refusal = match other {
                    None => preflight(),
                    Some(Route::MethodNotAllowed) => {
                        Response::error(405, "M_UNRECOGNIZED", "Method not allowed for this endpoint")
                    }
                    _ => Response::error(404, "M_UNRECOGNIZED", "Unrecognized request"),
                };
                let body_read = self.skip_body(&head).await?;
                return Ok((listener.metrics.unmatched(), refusal, body_read));
            }
        };
        let max_body = endpoint.max_body.unwrap_or(self.listener.limits.max_body_bytes);
        let body = self.read_body(&head, max_body).await?;
        let client_ip = self.listener.proxies.client_ip(self.peer, head.headers.get_all("x-forwarded-for"));
        let request = Request {
            method: head.method,
            path: head.path,
            query: head.query,
            headers: head.headers,
            body,
            peer: self.peer,
            client_ip,
            params,
        };
        // The request is fully received: its handler may take as long as it
        // needs (long-polls do), and the next request gets a fresh deadline.
        self.deadline = None;
        self.release_idle_buffers();
        let response = match &endpoint.handler {
            Handler::Ready(f) => std::panic::catch_unwind(AssertUnwindSafe(|| f(request))),
            Handler::Async(f) => match std::panic::catch_unwind(AssertUnwindSafe(|| f(request))) {
                Ok(fut) => CatchUnwind(fut).await,
                Err(panic) => Err(panic),
            },
        }
        .unwrap_or_else(|panic| {
            tracing::error!(endpoint = &*endpoint.name, panic = panic_message(&panic), "handler panicked");
            Response::error(500, "M_UNKNOWN", "Internal server error")
        });
        tracing::trace!(endpoint = &*endpoint.name, status = response.status, elapsed = ?started.elapsed());
        Ok((endpoint.id, response, true))
    }

    /// Reads until a complete request head is buffered.
    async fn next_head(&mut self) -> Result<Head, Close> {
        loop {
            if self.start == self.buf.len() {
                self.start = 0;
                self.buf.clear();
            }
            if self.start < self.buf.len() && self.deadline.is_none() {
                self.deadline = Some(Instant::now() + self.listener.limits.request_timeout);
            }
            match head::parse(&self.buf[self.start..]) {
                Ok(Some((head, used))) => {
                    self.start += used;
                    return Ok(head);
                }
                Ok(None) if self.buf.len() - self.start >= self.listener.limits.max_header_bytes => {
                    return Err(Close::With(Response::error(431, "M_TOO_LARGE", "Request headers too large")));
                }
                Ok(None) => {}
                Err(e) => return Err(Close::With(head_error(e))),
            }
            // Nothing more to answer until more bytes come: send what we have.
            if !self.out.is_empty() {
                self.flush().await.map_err(|_| Close::Quietly)?;
            }
            let idle = self.start == self.buf.len();
            if idle && self.listener.shutdown.is_triggered() {
                return Err(Close::Quietly);
            }
            // A head rarely needs more than one read buffer; a larger one
            // grows it a read at a time, up to the header limit.
            let room = self.listener.limits.max_header_bytes - (self.buf.len() - self.start);
            self.fill(room.min(READ_BUF), idle).await?;
        }
    }

    /// Reads the body as framed, refusing it before reading if it is larger
    /// than `max_body`.
    async fn read_body(&mut self, head: &Head, max_body: usize) -> Result<Bytes, Close> {
        let too_large = || Close::With(Response::error(413, "M_TOO_LARGE", "Request body too large"));
        match head.framing {
            Framing::Empty => Ok(Bytes::new()),
            Framing::Length(n) => {
                let n = usize::try_from(n).ok().filter(|&n| n <= max_body).ok_or_else(too_large)?;
                self.continue_if_expected(head, n).await?;
                while self.buf.len() - self.start < n {
                    let missing = n - (self.buf.len() - self.start);
                    self.fill(missing, false).await?;
                }
                let body = Bytes::copy_from_slice(&self.buf[self.start..self.start + n]);
                self.start += n;
                Ok(body)
            }
            Framing::Chunked => {
                self.continue_if_expected(head, 1).await?;
                let mut decoder = ChunkedDecoder::new(max_body);
                let mut body = Vec::new();
                loop {
                    let used = decoder.feed(&self.buf[self.start..], &mut body).map_err(|e| match e {
                        ChunkedError::TooLarge => too_large(),
                        ChunkedError::Malformed => {
                            Close::With(Response::error(400, "M_BAD_JSON", "Malformed chunked body"))
                        }
                    })?;
                    self.start += used;
                    if decoder.is_done() {
                        return Ok(body.into());
                    }
                    self.fill(READ_BUF, false).await?;
                }
            }
        }
    }

    /// Discards the body of a request we answer without running a handler
    /// (404, 405, OPTIONS), so the next pipelined request is found intact.
    /// A body announced larger than the listener's limit is not read at
    /// all: returns `false`, and the connection closes after the answer.
    async fn skip_body(&mut self, head: &Head) -> Result<bool, Close> {
        match head.framing {
            Framing::Empty => Ok(true),
            Framing::Length(n) if n > self.listener.limits.max_body_bytes as u64 => Ok(false),
            _ => self.read_body(head, self.listener.limits.max_body_bytes).await.map(|_| true),
        }
    }

    /// Sends `100 Continue` if the client waits for it and the body is not
    /// already here (RFC 9110 §10.1.1). Called only once the route and the
    /// size are accepted, so a refused upload is never sent.
    async fn continue_if_expected(&mut self, head: &Head, body_len: usize) -> Result<(), Close> {
        if head.expect_continue && self.buf.len() - self.start < body_len {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush().await.map_err(|_| Close::Quietly)?;
        }
        Ok(())
    }

    /// Reads at least one more byte into the buffer (up to `want` more).
    /// `idle` means no request is in progress: the idle time-out applies and
    /// shutdown interrupts the wait.
    async fn fill(&mut self, want: usize, idle: bool) -> Result<(), Close> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Grow by what is missing, but at most 64 KiB a read: a client that
        // announces a large body and then trickles it gets memory only as
        // fast as it sends.
        self.buf.reserve(want.clamp(1, 64 * 1024));
        let len = self.buf.len();
        let cap = self.buf.capacity();
        let buf = std::mem::take(&mut self.buf);
        let read = self.stream.read(buf.slice_mut(len..cap));

        let limits = &self.listener.limits;
        let result = if idle {
            monoio::select! {
                r = timeout(limits.idle_timeout, read) => r.ok(),
                _ = self.listener.shutdown.wait() => None,
            }
        } else {
            let deadline = self.deadline.unwrap_or_else(|| Instant::now() + limits.request_timeout);
            match timeout(deadline.saturating_duration_since(Instant::now()), read).await {
                Ok(r) => Some(r),
                Err(_) => {
                    let msg = "Timed out waiting for the request";
                    return Err(Close::With(Response::error(408, "M_UNKNOWN", msg)));
                }
            }
        };
        // A cancelled read took the buffer with it; the connection is over.
        let (result, slice) = result.ok_or(Close::Quietly)?;
        self.buf = slice.into_inner();
        match result {
            Ok(0) | Err(_) => Err(Close::Quietly),
            Ok(_) => Ok(()),
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        let out = std::mem::take(&mut self.out);
        let (result, mut out) = timeout(self.listener.limits.request_timeout, self.stream.write_all(out))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)?;
        result?;
        out.clear();
        // A large response (an initial sync) must not pin its buffer for
        // the connection's life.
        if out.capacity() <= FLUSH_AT {
            self.out = out;
        }
        Ok(())
    }

    /// Frees the read and write buffers while a handler runs, unless they
    /// hold pipelined bytes. Most of a server's connections sit in
    /// long-polls, where 16 KiB or more of empty buffers per connection (up
    /// to the largest body it ever sent) added up to megabytes; the next
    /// request allocates afresh, which costs far less than a request.
    fn release_idle_buffers(&mut self) {
        if self.start == self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
        }
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }
}

fn head_error(e: HeadError) -> Response {
    match e {
        HeadError::TooManyHeaders => Response::error(431, "M_TOO_LARGE", "Too many request headers"),
        HeadError::Malformed(why) => Response::error(400, "M_UNRECOGNIZED", why),
        HeadError::UnsupportedEncoding => {
            Response::error(501, "M_UNRECOGNIZED", "Only the chunked transfer coding is supported")
        }
        HeadError::UnsupportedExpectation => {
            Response::error(417, "M_UNRECOGNIZED", "Only Expect: 100-continue is supported")
        }
    }
}

fn panic_message(panic: &Box<dyn Any + Send>) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("?")
}

/// Turns a panic while polling a handler future into an `Err`, so one
/// faulty handler costs one 500 rather than the whole shard.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
