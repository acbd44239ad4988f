//! TLS to PostgreSQL, for `sslmode=require` in `storage.postgres_url`:
//! tokio-postgres negotiates (`SSLRequest`) and hands the stream to this
//! connector, which runs a rustls handshake over it.
//!
//! The certificate is always verified, against the roots the caller gives
//! (the public ones and `storage.postgres_ca_files`) and for the URL's host
//! name: libpq's `verify-full`, not its unverified `require`. A database
//! reached without `sslmode=require` (the default `prefer`) is spoken to
//! in plain text, as before: Debian's PostgreSQL enables TLS with a
//! self-signed "snakeoil" certificate that verification would refuse.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect};

/// A connector for one connection to the host `name`.
pub struct RustlsConnect {
    pub config: Arc<rustls::ClientConfig>,
    pub name: ServerName<'static>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + 'static> TlsConnect<S> for RustlsConnect {
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream<S>>>>>;

    fn connect(self, stream: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { Ok(TlsStream(connector.connect(self.name, stream).await?)) })
    }
}

/// The encrypted stream.
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    /// SCRAM channel binding is not offered: the password exchange is
    /// already inside a verified TLS session.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
