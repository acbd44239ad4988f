//! Listeners: the accept loop of one port on one shard, connection limits
//! and graceful shutdown.
//!
//! Every shard binds its own socket to each port with `SO_REUSEPORT`, so the
//! kernel spreads new connections over shards and a connection lives and
//! dies on the shard that accepted it.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use monoio::net::ListenerOpts;

use super::conn;
use super::forwarded::TrustedProxies;
use super::response::Response;
use super::router::Router;
use crate::metrics::HttpMetrics;
use crate::runtime::{spawn, timeout, TcpListener, TcpStream};
use crate::shutdown::Shutdown;

/// Limits that keep one client from taking more than its share.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request head (request line and headers); more is 431.
    pub max_header_bytes: usize,
    /// Largest body of routes without a limit of their own; more is 413.
    pub max_body_bytes: usize,
    /// How long a keep-alive connection may sit between requests.
    pub idle_timeout: Duration,
    /// How long a request may take to arrive, from its first byte to the end
    /// of its body; also bounds each write of a response. More is 408.
    pub request_timeout: Duration,
    /// Open connections per shard on this listener; more are refused with 503.
    pub max_connections: usize,
    /// How long a TLS handshake may take.
    pub tls_handshake_timeout: Duration,
    /// How long shutdown waits for in-flight requests before giving up.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
            idle_timeout: Duration::from_secs(75),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            tls_handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// One listening port as served by one shard.
pub struct Listener {
    /// Name for logs and metrics (`client`, `federation`).
    pub name: Rc<str>,
    /// The routes it serves.
    pub router: Router,
    /// Its limits.
    pub limits: Limits,
    /// Whose `X-Forwarded-For` to believe.
    pub proxies: TrustedProxies,
    /// TLS, if this listener terminates it.
    pub tls: Option<monoio_rustls::TlsAcceptor>,
    /// Request statistics.
    pub metrics: Rc<HttpMetrics>,
    /// The shard's shutdown latch.
    pub shutdown: Rc<Shutdown>,
    open: Cell<usize>,
    closed: RefCell<Vec<Waker>>,
}

impl Listener {
    /// A listener serving `router`.
    pub fn new(
        name: &str,
        router: Router,
        limits: Limits,
        proxies: TrustedProxies,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: Rc<Shutdown>,
    ) -> Rc<Self> {
        let metrics = Rc::new(HttpMetrics::new(name, router.endpoints().iter().map(|e| e.name.clone())));
        Rc::new(Self {
            name: name.into(),
            router,
            limits,
            proxies,
            tls: tls.map(monoio_rustls::TlsAcceptor::from),
            metrics,
            shutdown,
            open: Cell::new(0),
            closed: RefCell::new(Vec::new()),
        })
    }

    /// Binds this shard's socket for `addr` (with `SO_REUSEPORT`, so every
    /// shard can bind the same address).
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind_with_config(addr, &ListenerOpts::new().reuse_port(true).backlog(4096))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
    }

    /// Accepts connections until shutdown, then waits (up to the grace
    /// period) for open connections to finish their in-flight requests.
    pub async fn serve(self: Rc<Self>, socket: TcpListener) {
        loop {
            let accepted = monoio::select! {
                r = socket.accept() => r,
                _ = self.shutdown.wait() => break,
            };
            let (stream, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(listener = &*self.name, error = %e, "accept failed");
                    crate::runtime::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if self.open.get() >= self.limits.max_connections {
                spawn(refuse(stream));
                continue;
            }
            let _ = stream.set_nodelay(true);
            self.open.set(self.open.get() + 1);
            self.metrics.connection_opened();
            spawn(self.clone().connection(stream, peer));
        }
        drop(socket);
        let drained = poll_fn(|cx| {
            if self.open.get() == 0 {
                Poll::Ready(())
            } else {
                self.closed.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        });
        if timeout(self.limits.shutdown_grace, drained).await.is_err() {
            tracing::warn!(listener = &*self.name, open = self.open.get(), "connections still open after grace period");
        }
    }

    async fn connection(self: Rc<Self>, stream: TcpStream, peer: SocketAddr) {
        match &self.tls {
            None => conn::serve(stream, peer, &self).await,
            Some(acceptor) => match timeout(self.limits.tls_handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => conn::serve(tls, peer, &self).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            },
        }
        self.open.set(self.open.get() - 1);
        self.metrics.connection_closed();
        for waker in self.closed.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

/// Answers a connection over the limit with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    use monoio::io::AsyncWriteRentExt;
    let mut out = Vec::new();
    Response::error(503, "M_LIMIT_EXCEEDED", "Too many connections").write_to(&mut out, false, false);
    let _ = timeout(Duration::from_secs(1), stream.write_all(out)).await;
}
