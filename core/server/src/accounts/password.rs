//! Password hashes: Argon2id with the argon2 crate's defaults (19 MiB, two
//! passes, one lane: OWASP's recommended minimum), stored as PHC strings so
//! the parameters can be raised later without breaking old hashes.
//!
//! Hashing costs tens of milliseconds of CPU on purpose, so it runs on the
//! blocking helper threads, never on a shard's reactor.
//!
//! Argon2's 19 MiB of working memory is mapped for each hash and unmapped
//! right after it, instead of coming from the allocator: an allocator keeps
//! freed memory of that size around for reuse, and that alone was more
//! resident memory than the rest of a busy server (measured in
//! `docs/benchmarks.md`, "Memory").

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use memmap2::MmapMut;

/// Longest password accepted: Argon2 takes any length, but hashing
/// megabytes would let one request burn a helper thread.
pub const MAX_PASSWORD_BYTES: usize = 512;

/// Hashes `password` off the reactor.
pub async fn hash(password: String) -> String {
    tessera_net::blocking::run(move || {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).expect("the OS random source failed");
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
        let argon = Argon2::default();
        let output = compute(&argon, password.as_bytes(), salt.as_salt(), Params::DEFAULT_OUTPUT_LEN)
            .expect("default parameters are valid");
        PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::default().into()),
            params: ParamsString::try_from(&Params::DEFAULT).expect("default parameters are valid"),
            salt: Some(salt.as_salt()),
            hash: Some(output),
        }
        .to_string()
    })
    .await
}

/// Checks `password` against a stored PHC string, off the reactor. A
/// malformed stored hash never matches.
pub async fn verify(password: String, phc: String) -> bool {
    tessera_net::blocking::run(move || matches(password.as_bytes(), &phc).unwrap_or(false)).await
}

/// Recomputes the hash with the stored algorithm, version, parameters and
/// salt and compares in constant time (`Output`'s equality).
fn matches(password: &[u8], phc: &str) -> Option<bool> {
    let stored = PasswordHash::new(phc).ok()?;
    let expected = stored.hash?;
    let algorithm = Algorithm::try_from(stored.algorithm).ok()?;
    let version = stored.version.map_or(Ok(Version::default()), Version::try_from).ok()?;
    let params = Params::try_from(&stored).ok()?;
    let argon = Argon2::new(algorithm, version, params);
    Some(compute(&argon, password, stored.salt?, expected.len())? == expected)
}

/// One Argon2 computation in freshly mapped memory.
fn compute(argon: &Argon2<'_>, password: &[u8], salt: Salt<'_>, output_len: usize) -> Option<Output> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes).ok()?;
    let mut memory = BlockMemory::map(argon.params().block_count())?;
    Output::init_with(output_len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, memory.blocks())
            .map_err(|_| argon2::password_hash::Error::Password)
    })
    .ok()
}

/// Argon2's working memory in its own anonymous mapping, returned to the
/// OS when dropped.
struct BlockMemory {
    map: MmapMut,
    count: usize,
}

impl BlockMemory {
    fn map(count: usize) -> Option<Self> {
        let map = MmapMut::map_anon(count.checked_mul(Block::SIZE)?).ok()?;
        Some(Self { map, count })
    }

    fn blocks(&mut self) -> &mut [Block] {
        // SAFETY: the mapping is page-aligned (more than `Block`'s 64-byte
        // alignment), `count * Block::SIZE` bytes long, zero-filled by the
        // kernel (a valid `Block`: plain `u64`s) and borrowed mutably for
        // the slice's whole life.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().cast::<Block>(), self.count) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hash_verifies_only_the_same_password() {
        let mut rt = tessera_net::runtime::build_shard_runtime().unwrap();
        rt.block_on(async {
            let phc = hash("correct horse".into()).await;
            assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
            assert!(verify("correct horse".into(), phc.clone()).await);
            assert!(!verify("wrong horse".into(), phc).await);
            assert!(!verify("x".into(), "not a phc string".into()).await);
        });
    }

    /// Hashes stored before the hashing moved to mapped memory (made by
    /// the crate's own `hash_password`) must still log in, and the crate
    /// must accept ours.
    #[test]
    fn hashes_stay_compatible_with_the_argon2_crates_own_format() {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::default().hash_password(b"secret", &salt).unwrap().to_string();
        assert_eq!(matches(b"secret", &theirs), Some(true));
        assert_eq!(matches(b"other", &theirs), Some(false));

        let mut rt = tessera_net::runtime::build_shard_runtime().unwrap();
        let ours = rt.block_on(hash("secret".into()));
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"secret", &parsed).is_ok());
    }

    #[test]
    fn stored_hash_with_other_parameters_is_checked_with_those_parameters() {
        let params = Params::new(8, 1, 1, Some(32)).unwrap();
        let argon = Argon2::new(Algorithm::Argon2i, Version::V0x10, params);
        let salt = SaltString::encode_b64(b"saltsaltsaltsalt").unwrap();
        let old = argon.hash_password(b"pw", &salt).unwrap().to_string();
        assert_eq!(matches(b"pw", &old), Some(true));
        assert_eq!(matches(b"pX", &old), Some(false));
    }
}
