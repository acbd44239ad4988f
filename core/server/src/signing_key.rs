//! The server's ed25519 signing key file, in Synapse's format so keys carry
//! over between implementations: one line per key,
//! `ed25519 <version> <unpadded base64 of the 32-byte seed>`.

use std::io;
use std::path::Path;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ed25519_dalek::SigningKey;

/// A signing key and its version (the part after `ed25519:` in key IDs).
pub struct ServerKey {
    /// E.g. `a_Xb3k`.
    pub version: String,
    /// The key.
    pub key: SigningKey,
}

impl ServerKey {
    /// A fresh key from the OS random number generator.
    pub fn generate() -> io::Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(io::Error::other)?;
        let mut tag = [0u8; 4];
        getrandom::getrandom(&mut tag).map_err(io::Error::other)?;
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let version =
            format!("a_{}", tag.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect::<String>());
        Ok(Self { version, key: SigningKey::from_bytes(&seed) })
    }

    /// The key's line in a key file.
    pub fn to_line(&self) -> String {
        format!("ed25519 {} {}\n", self.version, STANDARD_NO_PAD.encode(self.key.to_bytes()))
    }

    /// The public key, unpadded base64, as published to other servers.
    pub fn public_base64(&self) -> String {
        STANDARD_NO_PAD.encode(self.key.verifying_key().to_bytes())
    }

    /// Reads the first key of a key file.
    pub fn read(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| invalid("no key"))?;
        let mut parts = line.split_whitespace();
        let (Some("ed25519"), Some(version), Some(seed), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("expected `ed25519 <version> <base64 seed>`"));
        };
        let seed = STANDARD_NO_PAD.decode(seed.trim_end_matches('=')).map_err(|_| invalid("seed is not base64"))?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| invalid("seed is not 32 bytes"))?;
        Ok(Self { version: version.to_owned(), key: SigningKey::from_bytes(&seed) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_key_reads_back_identical() {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::generate().unwrap();
        let path = dir.path().join("signing.key");
        std::fs::write(&path, key.to_line()).unwrap();
        let back = ServerKey::read(&path).unwrap();
        assert_eq!(back.version, key.version);
        assert_eq!(back.key.to_bytes(), key.key.to_bytes());
        assert!(key.version.starts_with("a_") && key.version.len() == 6);
    }

    #[test]
    fn truncated_seed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        std::fs::write(&path, "ed25519 a_abcd AAAA\n").unwrap();
        let Err(e) = ServerKey::read(&path) else { panic!("accepted a 3-byte seed") };
        assert!(e.to_string().contains("32 bytes"), "{e}");
    }
}
