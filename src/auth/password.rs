//! argon2id password hashing, run on the blocking pool so a login never stalls the async runtime.
//! At most one hash per core runs at a time: each takes 19 MiB and a core for tens of
//! milliseconds, so a burst of sign-ins queues instead of exhausting memory.
use std::sync::LazyLock;

use tokio::sync::Semaphore;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};

use crate::error::{AppError, AppResult};

/// Hashes running at once: one per core.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Runs one argon2 computation on the blocking pool, once a core is free for it.
async fn argon2_work<T: Send + 'static>(
    work: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    let _permit = HASHING.acquire().await.map_err(|e| AppError::internal(e))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::internal(e))?
}

/// Hashes a password with argon2id (the crate's default parameters: 19 MiB, 2 passes).
pub async fn hash(password: String) -> AppResult<String> {
    argon2_work(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(e))
    })
    .await
}

/// Checks a password against a stored PHC hash string.
pub async fn verify(password: String, phc: String) -> AppResult<bool> {
    argon2_work(move || {
        let parsed = PasswordHash::new(&phc).map_err(|e| AppError::internal(e))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
}
