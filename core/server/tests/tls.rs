//! TLS on the federation listener, with the certificate generate-config made.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use common::Server;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Trusts exactly one certificate: the self-signed one the server was given.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("unexpected certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// One GET over TLS to the federation listener, trusting the server's own
/// generated certificate. Returns the raw HTTP response.
fn tls_get(server: &Server, path: &str) -> String {
    let cert = CertificateDer::from_pem_file(server.data_dir().join("data/tls.crt")).unwrap();
    let provider = Arc::new(ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
        .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut sock = TcpStream::connect(server.federation).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    String::from_utf8(response).unwrap()
}

#[test]
fn federation_listener_speaks_tls_with_generated_certificate() {
    let server = Server::start(&[]);
    let text = tls_get(&server, "/_matrix/federation/v1/version");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains(r#""name":"Tessera""#), "{text}");
}

#[test]
fn published_server_keys_are_self_signed_by_the_key_file_key() {
    let server = Server::start(&[]);
    let text = tls_get(&server, "/_matrix/key/v2/server");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body = text.split_once("\r\n\r\n").unwrap().1;
    let response = tessera_proto::canonical_json::parse_object(body.as_bytes()).unwrap();

    let key_file = std::fs::read_to_string(server.data_dir().join("data/signing.key")).unwrap();
    let key = tessera_proto::keys::parse_key_file(&key_file).unwrap().remove(0);
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["server_name"], "localhost");
    assert_eq!(json["verify_keys"][key.key_id().as_str()]["key"], key.public_key().to_base64());
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(json["valid_until_ts"].as_u64().unwrap() > now_ms + 23 * 3600 * 1000);

    let mut known = tessera_proto::signatures::KnownKeys::new();
    let entry = tessera_proto::signatures::KnownKey { key: key.public_key(), valid_until_ts: None };
    known.insert("localhost", key.key_id().as_str(), entry);
    tessera_proto::signatures::verify_json(&response, "localhost", &known).expect("signature verifies");
}

#[test]
fn plaintext_on_tls_listener_is_not_served() {
    let server = Server::start(&[]);
    let mut sock = TcpStream::connect(server.federation).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    sock.write_all(b"GET /_matrix/federation/v1/version HTTP/1.1\r\n\r\n").unwrap();
    let mut response = Vec::new();
    let _ = sock.read_to_end(&mut response);
    assert!(!String::from_utf8_lossy(&response).contains("Tessera"));
    // The listener still serves TLS clients afterwards (no crash).
    assert_eq!(common::get(server.client, "/health").status, 200);
}
