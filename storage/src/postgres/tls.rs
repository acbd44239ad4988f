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
//!
//! A client certificate (libpq's `sslcert`/`sslkey`, for `cert`
//! authentication in `pg_hba.conf`) is presented when one is configured.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect};

/// The TLS settings for PostgreSQL: verify the server against `roots`,
/// and present `identity` (a PEM certificate chain and its PEM private key)
/// when given.
pub fn client_config(
    roots: rustls::RootCertStore,
    identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_slice_iter(chain)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            if chain.is_empty() {
                return Err("client certificate: no certificate in the file".into());
            }
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("client key: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate and key: {e}"))?
        }
    };
    Ok(Arc::new(config))
}

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
