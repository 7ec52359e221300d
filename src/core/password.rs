//! Password hashing with argon2id at OWASP's parameters (19 MiB, t=2, p=1).
//!
//! Hashing is CPU- and memory-bound, so it runs on the blocking pool behind a
//! semaphore sized to the cores: a login flood queues instead of allocating 19 MiB
//! per concurrent attempt.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use crate::{config::Secret, error::AppError};

/// A valid hash of a random password with the same parameters: verifying against it
/// costs what a real verification costs, so an unknown email is not faster to reject.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Tyb72ALABhSttCodgjgrvA$LodFUSwIVH8GfHMlQc/bn715uDvw5IneicgFs8Nhpv4";

fn argon2() -> Argon2<'static> {
    // The constants are valid parameters; `expect` documents that they are checked here.
    #[allow(clippy::expect_used)]
    let params = Params::new(19_456, 2, 1, None).expect("OWASP argon2id parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and verifies passwords off the async runtime, a bounded number at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    verifications: Arc<AtomicU64>,
}

impl Passwords {
    /// One permit per core: more concurrent hashes would only add memory, not speed.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            permits: Arc::new(Semaphore::new(cores)),
            verifications: Arc::default(),
        }
    }

    /// A PHC string (`$argon2id$...`) with a fresh random salt.
    pub async fn hash(&self, password: Secret) -> Result<String, AppError> {
        self.run(move || {
            argon2()
                .hash_password(password.expose().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(AppError::internal)
        })
        .await
    }

    /// Whether `password` matches `hash`; with no hash (unknown account), spends one
    /// verification anyway and answers false.
    pub async fn verify(&self, password: Secret, hash: Option<String>) -> Result<bool, AppError> {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        self.run(move || {
            let known = hash.is_some();
            let hash = hash.as_deref().unwrap_or(DUMMY_HASH);
            let matches = argon2()
                .verify_password(password.expose().as_bytes(), hash)
                .is_ok();
            Ok(known && matches)
        })
        .await
    }

    /// Verifications started so far: every login attempt must cost one, known email or not.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        // The permit moves into the blocking task: a client that disconnects mid-hash
        // does not free a slot while its 19 MiB hash is still running.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(AppError::internal)?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            span.in_scope(work)
        })
        .await
        .map_err(AppError::internal)?
    }
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

    #[test]
    fn dummy_hash_has_the_real_parameters() {
        let parsed = argon2::PasswordHash::new(DUMMY_HASH).expect("valid PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(parsed.params.to_string(), "m=19456,t=2,p=1");
    }
}
