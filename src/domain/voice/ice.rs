//! The STUN and TURN servers clients hand to `RTCPeerConnection`. TURN credentials follow the
//! shared-secret scheme coturn implements (`use-auth-secret`, the "TURN REST API" draft): the
//! username is `<unix expiry>:<user id>` and the credential `base64(HMAC-SHA1(secret,
//! username))`, so any TURN server configured with the same secret accepts them until they
//! expire, and nothing has to be stored.
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use uuid::Uuid;

use crate::{domain::Viewer, state::AppState};

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub credential: Option<String>,
}

/// The configured STUN servers (no credentials) and, when a TURN secret is configured, the TURN
/// servers with credentials for the caller valid for `GOFTGU_TURN_TTL` seconds. TURN servers
/// are left out without a secret: browsers refuse a TURN entry that has no credentials.
pub fn servers(app: &AppState, viewer: &Viewer) -> Vec<IceServer> {
    let voice = &app.config.voice;
    let mut servers = Vec::new();
    let stun = urls(&voice.stun_urls);
    if !stun.is_empty() {
        servers.push(IceServer {
            urls: stun,
            username: None,
            credential: None,
        });
    }
    let turn = urls(&voice.turn_urls);
    if let Some(secret) = voice.turn_secret.as_deref().filter(|s| !s.is_empty())
        && !turn.is_empty()
    {
        let expiry = chrono::Utc::now().timestamp() + voice.turn_ttl_seconds as i64;
        let (username, credential) = turn_credentials(secret, viewer.user_id, expiry);
        servers.push(IceServer {
            urls: turn,
            username: Some(username),
            credential: Some(credential),
        });
    }
    servers
}

/// The configured URLs, trimmed, without empty entries.
fn urls(configured: &[String]) -> Vec<String> {
    configured
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The TURN username and credential for `user`, valid until `expiry` (Unix seconds).
pub fn turn_credentials(secret: &str, user: Uuid, expiry: i64) -> (String, String) {
    let username = format!("{expiry}:{user}");
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_coturn_rest_scheme() {
        let user = Uuid::parse_str("6f1c2e9a-0000-4000-8000-000000000001").unwrap();
        let (username, credential) = turn_credentials("north", user, 1_700_000_000);
        assert_eq!(username, "1700000000:6f1c2e9a-0000-4000-8000-000000000001");
        // python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"north",
        //   b"1700000000:6f1c2e9a-0000-4000-8000-000000000001", hashlib.sha1).digest()).decode())'
        assert_eq!(credential, "308gsiikczMiVYSRDmkZds9iaDU=");
    }
}
