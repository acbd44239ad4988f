//! TLS configuration for listeners, on rustls with the `ring` provider.
//!
//! The provider is chosen explicitly (not the process default) so that no
//! other crate in the build can change which cryptography we use; `ring`
//! builds with a C compiler alone, where aws-lc-rs would also need cmake.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Loads a PEM certificate chain and private key into a server config that
/// speaks HTTP/1.1 over TLS 1.2 or 1.3.
pub fn server_config(cert_path: &Path, key_path: &Path) -> io::Result<Arc<ServerConfig>> {
    let invalid = |what: &Path, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", what.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| invalid(cert_path, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(cert_path, &e))?;
    if certs.is_empty() {
        return Err(invalid(cert_path, &"no certificate in file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| invalid(key_path, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(cert_path, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(cert_path, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
