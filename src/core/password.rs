//! Password hashing with argon2id at OWASP's parameters (19 MiB, t=2, p=1).
//!
//! Hashing is CPU- and memory-bound, so it runs on the blocking pool behind a
//! semaphore sized to the cores: a login flood queues instead of allocating 19 MiB
//! per concurrent attempt. Each permit owns one reusable 19 MiB work buffer, so hashing
//! allocates nothing: with a fresh 19 MiB allocation per hash, glibc kept the freed
//! blocks and a 10 s login flood left the process at ~450 MiB RSS (measured); with the
//! pool it stays at cores × 19 MiB above idle.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, PasswordHash, PasswordVerifier as _, Version,
    password_hash::phc::{Output, ParamsString, Salt},
};
use tokio::sync::Semaphore;

use crate::{config::Secret, error::AppError};

/// A valid hash of a random password with the same parameters: verifying against it
/// costs what a real verification costs, so an unknown email is not faster to reject.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Tyb72ALABhSttCodgjgrvA$LodFUSwIVH8GfHMlQc/bn715uDvw5IneicgFs8Nhpv4";

const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;

fn params() -> Result<Params, AppError> {
    Params::new(MEMORY_KIB, ITERATIONS, 1, Some(OUTPUT_BYTES)).map_err(AppError::internal)
}

/// One hash's work memory: `MEMORY_KIB` blocks of 1 KiB.
type Blocks = Vec<Block>;

/// Callers that may wait for a hashing slot, per slot. Beyond that a login is refused
/// at once (503, `Retry-After`) instead of queueing: 300 concurrent logins used to wait
/// 9.9 s in an unbounded queue, holding their connections all the while. Sixteen per
/// slot is about 0.3 s of queue at ~60 hashes per second per core.
const QUEUE_PER_PERMIT: usize = 16;

/// Hashes and verifies passwords off the async runtime, a bounded number at a time,
/// with a bounded queue in front.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Callers holding or waiting for a permit.
    admitted: Arc<AtomicUsize>,
    max_admitted: usize,
    /// Idle work buffers; never more than there are permits.
    buffers: Arc<Mutex<Vec<Blocks>>>,
    verifications: Arc<AtomicU64>,
}

impl Passwords {
    /// One permit per core: more concurrent hashes would only add memory, not speed.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::with_slots(cores)
    }

    fn with_slots(slots: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(slots)),
            admitted: Arc::default(),
            max_admitted: slots * (1 + QUEUE_PER_PERMIT),
            buffers: Arc::default(),
            verifications: Arc::default(),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) with a fresh random salt.
    pub async fn hash(&self, password: Secret) -> Result<String, AppError> {
        self.run(move |blocks| {
            let params = params()?;
            let salt_bytes: [u8; SALT_BYTES] = rand::random();
            let salt = Salt::new(&salt_bytes).map_err(AppError::internal)?;
            let mut out = [0u8; OUTPUT_BYTES];
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
                .hash_password_into_with_memory(
                    password.expose().as_bytes(),
                    &salt,
                    &mut out,
                    blocks,
                )
                .map_err(AppError::internal)?;
            let phc = PasswordHash {
                algorithm: ARGON2ID_IDENT,
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params).map_err(AppError::internal)?,
                salt: Some(salt),
                hash: Some(Output::new(&out).map_err(AppError::internal)?),
            };
            Ok(phc.to_string())
        })
        .await
    }

    /// Whether `password` matches `hash`; with no hash (unknown account), spends one
    /// verification anyway and answers false.
    pub async fn verify(&self, password: Secret, hash: Option<String>) -> Result<bool, AppError> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        self.run(move |blocks| {
            let known = hash.is_some();
            let matches = verify_with(
                password.expose().as_bytes(),
                hash.as_deref().unwrap_or(DUMMY_HASH),
                blocks,
            );
            Ok(known && matches)
        })
        .await
    }

    /// Verifications started so far: every login attempt must cost one, known email or not.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Runs `work` on the blocking pool with a permit and a pooled work buffer. The permit
    /// moves into the blocking task: a client that disconnects mid-hash does not free a
    /// slot while its hash is still running.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let admission = Admission::enter(&self.admitted, self.max_admitted)?;
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(AppError::internal)?;
        let buffers = Arc::clone(&self.buffers);
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _slot = (permit, admission);
            let pooled = buffers.lock().map_err(AppError::internal)?.pop();
            let mut blocks = pooled.unwrap_or_else(|| vec![Block::default(); MEMORY_KIB as usize]);
            let result = span.in_scope(|| work(&mut blocks));
            buffers.lock().map_err(AppError::internal)?.push(blocks);
            result
        })
        .await
        .map_err(AppError::internal)?
    }
}

/// One caller counted in [`Passwords::admitted`] until dropped: when its hash is done,
/// or when it gave up waiting (the client went away).
struct Admission(Arc<AtomicUsize>);

impl Admission {
    fn enter(admitted: &Arc<AtomicUsize>, max: usize) -> Result<Self, AppError> {
        if admitted.fetch_add(1, Ordering::AcqRel) >= max {
            admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::Overloaded {
                retry_after_secs: 1,
            });
        }
        Ok(Self(Arc::clone(admitted)))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Verifies against a PHC string. Hashes with our parameters use the pooled buffer;
/// any other argon2 hash (say, from before a parameter change) goes through the
/// library's allocating path.
fn verify_with(password: &[u8], phc: &str, blocks: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let pooled = (|| {
        let params = Params::try_from(&parsed).ok()?;
        if parsed.algorithm != ARGON2ID_IDENT || params.block_count() > blocks.len() {
            return None;
        }
        let (salt, expected) = (parsed.salt.as_ref()?, parsed.hash.as_ref()?);
        let version = Version::try_from(parsed.version.unwrap_or(0x13)).ok()?;
        let mut out = vec![0u8; expected.len()];
        Argon2::new(Algorithm::Argon2id, version, params)
            .hash_password_into_with_memory(password, salt, &mut out, &mut *blocks)
            .ok()?;
        // `Output` compares in constant time.
        Some(Output::new(&out).ok()? == *expected)
    })();
    pooled.unwrap_or_else(|| Argon2::default().verify_password(password, &parsed).is_ok())
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let passwords = Passwords::new();
        let hash = passwords
            .hash(Secret::new("correct horse"))
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            passwords
                .verify(Secret::new("correct horse"), Some(hash.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify(Secret::new("wrong horse"), Some(hash))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn unknown_account_never_matches() {
        let passwords = Passwords::new();
        assert!(
            !passwords
                .verify(Secret::new("anything"), None)
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn interoperates_with_the_library_format() {
        let passwords = Passwords::new();
        let ours = passwords.hash(Secret::new("interop")).await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(
            Argon2::default()
                .verify_password(b"interop", &parsed)
                .is_ok()
        );

        // A hash made by the library with other parameters still verifies.
        let other = argon2::PasswordHasher::hash_password(
            &Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(8_192, 1, 1, None).expect("params"),
            ),
            b"older",
        )
        .expect("hash")
        .to_string();
        assert!(
            passwords
                .verify(Secret::new("older"), Some(other.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify(Secret::new("wrong"), Some(other))
                .await
                .expect("verify")
        );
        assert!(
            !passwords
                .verify(Secret::new("x"), Some("not a hash".into()))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn buffers_never_outnumber_permits() {
        let passwords = Passwords::new();
        let all = (0..8).map(|i| passwords.hash(Secret::new(format!("password {i}"))));
        futures_util::future::join_all(all).await;
        let pooled = passwords.buffers.lock().expect("lock").len();
        assert!(
            pooled >= 1 && pooled <= passwords.permits.available_permits(),
            "{pooled}"
        );
    }

    #[test]
    fn dummy_hash_has_the_real_parameters() {
        let parsed = argon2::PasswordHash::new(DUMMY_HASH).expect("valid PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.params.to_string(), "m=19456,t=2,p=1");
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_drains() {
        // One slot, so at most 1 + QUEUE_PER_PERMIT callers are admitted at once.
        let passwords = Passwords::with_slots(1);
        let attempts: Vec<_> = (0..QUEUE_PER_PERMIT + 8)
            .map(|_| {
                let passwords = passwords.clone();
                tokio::spawn(async move { passwords.verify(Secret::new("x"), None).await })
            })
            .collect();
        let mut refused = 0;
        for attempt in attempts {
            match attempt.await.expect("join") {
                Ok(matched) => assert!(!matched),
                Err(AppError::Overloaded { retry_after_secs }) => {
                    assert_eq!(retry_after_secs, 1);
                    refused += 1;
                }
                Err(other) => panic!("{other}"),
            }
        }
        assert!(refused >= 7, "{refused} refused");
        assert_eq!(passwords.admitted.load(Ordering::Acquire), 0);
        assert!(passwords.verify(Secret::new("x"), None).await.is_ok());
    }
}
