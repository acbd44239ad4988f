//! Password hashes: Argon2id with the argon2 crate's defaults (19 MiB, two
//! passes, one lane: OWASP's recommended minimum), stored as PHC strings so
//! the parameters can be raised later without breaking old hashes.
//!
//! Hashing costs tens of milliseconds of CPU on purpose, so it runs on the
//! blocking helper threads, never on a shard's reactor.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Longest password accepted: Argon2 takes any length, but hashing
/// megabytes would let one request burn a helper thread.
pub const MAX_PASSWORD_BYTES: usize = 512;

/// Hashes `password` off the reactor.
pub async fn hash(password: String) -> String {
    tessera_net::blocking::run(move || {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).expect("the OS random source failed");
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
        Argon2::default().hash_password(password.as_bytes(), &salt).expect("default parameters are valid").to_string()
    })
    .await
}

/// Checks `password` against a stored PHC string, off the reactor. A
/// malformed stored hash never matches.
pub async fn verify(password: String, phc: String) -> bool {
    tessera_net::blocking::run(move || {
        PasswordHash::new(&phc)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_password() {
        let mut rt = tessera_net::runtime::build_shard_runtime().unwrap();
        rt.block_on(async {
            let phc = hash("correct horse".into()).await;
            assert!(phc.starts_with("$argon2id$"));
            assert!(verify("correct horse".into(), phc.clone()).await);
            assert!(!verify("wrong horse".into(), phc).await);
            assert!(!verify("x".into(), "not a phc string".into()).await);
        });
    }
}
