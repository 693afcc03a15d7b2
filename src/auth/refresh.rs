//! Refresh tokens: opaque, `goftgu_rt_` followed by 32 random bytes in base64url (43 characters),
//! the prefix so that people and secret scanners recognise one. Only the SHA-256 of the random
//! bytes is stored, so a copy of the database signs nobody in. Which token is still good, and what
//! reuse means, is decided by `domain::sessions`.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What every refresh token starts with.
pub const PREFIX: &str = "goftgu_rt_";

const RANDOM_BYTES: usize = 32;

/// A new refresh token and the hash it is stored under.
pub struct Fresh {
    /// Handed to the client once, never stored.
    pub token: String,
    /// The key of its `refresh_tokens` row.
    pub hash: String,
}

/// Makes a new refresh token.
pub fn generate() -> Fresh {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    Fresh {
        token: format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)),
        hash: digest(&bytes),
    }
}

/// The stored hash of a presented token; `None` when it is not shaped like one of ours (no
/// database lookup is needed to refuse it).
pub fn hash(presented: &str) -> Option<String> {
    let encoded = presented.trim().strip_prefix(PREFIX)?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    (bytes.len() == RANDOM_BYTES).then(|| digest(&bytes))
}

fn digest(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hashes_to_its_stored_hash_and_nothing_else_does() {
        let fresh = generate();
        assert!(fresh.token.starts_with(PREFIX));
        assert_eq!(fresh.token.len(), PREFIX.len() + 43);
        assert_eq!(hash(&fresh.token).as_deref(), Some(fresh.hash.as_str()));
        assert_eq!(fresh.hash.len(), 64);
        assert_ne!(generate().hash, fresh.hash);
        let body = &fresh.token[PREFIX.len()..];
        let longer = format!("{}x", fresh.token);
        for bad in ["", PREFIX, body, "goftgu_rt_abc", longer.as_str()] {
            assert_eq!(hash(bad), None, "{bad}");
        }
        let mut other = fresh.token.clone();
        let last = other.pop().unwrap();
        other.push(if last == 'A' { 'Q' } else { 'A' });
        assert_ne!(hash(&other), Some(fresh.hash));
    }
}
