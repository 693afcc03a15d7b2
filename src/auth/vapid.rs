//! The server's VAPID key pair (RFC 8292), which identifies it to browsers' push services: taken
//! from configuration, or generated once and kept in `<data-dir>/vapid_private_key` (mode 0600),
//! like the JWT secret, so browsers that subscribed with its public key keep receiving. Signs the
//! short-lived ES256 tokens sent with each push.
use std::{fmt, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::{elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
use rand::RngCore;

const FILE_NAME: &str = "vapid_private_key";

/// The signing half and the public key browsers subscribe with.
pub struct VapidKey {
    signing: EncodingKey,
    public: String,
}

impl fmt::Debug for VapidKey {
    /// The private key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    aud: &'a str,
    exp: i64,
    sub: &'a str,
}

impl VapidKey {
    /// The configured key (base64url of the 32-byte scalar), or the persisted one, created on
    /// first run.
    pub fn load_or_generate(configured: Option<&str>, data_dir: &Path) -> std::io::Result<Self> {
        let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
        if let Some(text) = configured {
            return Self::from_base64(text.trim()).ok_or_else(|| {
                invalid("GOFTGU_VAPID_PRIVATE_KEY must be a P-256 private key: 32 bytes, base64url")
            });
        }
        let path = data_dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(existing) if !existing.trim().is_empty() => {
                return Self::from_base64(existing.trim())
                    .ok_or_else(|| invalid("the kept VAPID private key is not a P-256 key"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (key, text) = loop {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            // Zero or a value past the group order is refused: draw again (chance ~2^-32).
            if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
                break (key, URL_SAFE_NO_PAD.encode(bytes));
            }
        };
        super::secret::write_private(&path, &text)?;
        tracing::info!(path = %path.display(), "generated a new VAPID key pair");
        Self::from_secret(&key).ok_or_else(|| invalid("VAPID key"))
    }

    fn from_base64(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        Self::from_secret(&p256::SecretKey::from_slice(&bytes).ok()?)
    }

    fn from_secret(key: &p256::SecretKey) -> Option<Self> {
        let der = key.to_pkcs8_der().ok()?;
        let point = key.public_key().to_encoded_point(false);
        Some(Self {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            public: URL_SAFE_NO_PAD.encode(point.as_bytes()),
        })
    }

    /// The public key, base64url of the uncompressed point: the `applicationServerKey` of
    /// `pushManager.subscribe`, and the `k` of every push's `Authorization`.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header value for a push to `audience` (the endpoint's origin):
    /// `vapid t=<ES256 JWT>, k=<public key>`, the token valid for `ttl_seconds` (at most 24 h).
    pub fn authorization(
        &self,
        audience: &str,
        subject: &str,
        ttl_seconds: i64,
    ) -> jsonwebtoken::errors::Result<String> {
        let claims = Claims {
            aud: audience,
            exp: chrono::Utc::now().timestamp() + ttl_seconds.min(24 * 3600),
            sub: subject,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.signing)?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = VapidKey::load_or_generate(None, dir.path()).unwrap();
        let again = VapidKey::load_or_generate(None, dir.path()).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(first.public_key()).unwrap().len(),
            65
        );
        let kept = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        let given = VapidKey::load_or_generate(Some(&kept), tempfile::tempdir().unwrap().path());
        assert_eq!(given.unwrap().public_key(), first.public_key());
        assert!(VapidKey::load_or_generate(Some("short"), dir.path()).is_err());
        assert!(!format!("{first:?}").contains(kept.trim()));
    }
}
