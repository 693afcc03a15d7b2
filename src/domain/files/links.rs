//! Download links. Avatars are public; every other file is fetched through a signed, expiring
//! link, `/files/{id}?exp=…&sig=…`, so `<img src>` works without headers. `sig` is the
//! HMAC-SHA256 of `{id}.{exp}` under the link secret, in lower-case hex: a link cannot be forged,
//! extended, or moved to another file, and it is checked in constant time.
use base16ct::HexDisplay;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::{
    entity::file::{self, Purpose},
    state::AppState,
};

/// The URL a client uses to fetch a file: public for avatars, otherwise signed and expiring.
pub fn url(app: &AppState, file: &file::Model) -> String {
    if file.purpose == Purpose::Avatar {
        return absolute(app, &stored_path(file.id));
    }
    signed_url(app, file.id)
}

/// What is stored for a public file (an avatar, a chat image): its path, so a change of the
/// public address changes every link at once.
pub fn stored_path(id: Uuid) -> String {
    format!("/files/{id}")
}

/// A signed, expiring link to file `id`, absolute.
pub fn signed_url(app: &AppState, id: Uuid) -> String {
    let expires = Utc::now().timestamp() + app.config.link_ttl_seconds as i64;
    absolute(app, &sign(&app.link_secret, id, expires))
}

/// A path on this server as a URL clients on any origin can use (the public base in front); an
/// already absolute URL is kept.
pub fn absolute(app: &AppState, path: &str) -> String {
    if path.starts_with('/') {
        format!("{}{path}", app.config.public_base())
    } else {
        path.to_owned()
    }
}

/// The file id inside a stored `/files/{id}` URL (a path, or an absolute URL of this server).
pub fn file_id_of(url: &str) -> Option<Uuid> {
    let rest = url.split_once("/files/")?.1;
    Uuid::parse_str(rest.split(['?', '/']).next()?).ok()
}

/// A signed link's parameters.
pub struct Signed {
    pub exp: i64,
    pub sig: String,
}

/// Whether `signed` is an unexpired link to file `id`.
pub(super) fn verify(app: &AppState, id: Uuid, signed: &Signed) -> bool {
    valid(&app.link_secret, id, signed, Utc::now().timestamp())
}

/// The link to file `id`, valid until at least `expires`.
fn sign(secret: &[u8], id: Uuid, expires: i64) -> String {
    // Round up to the hour so one response's links are stable and cacheable.
    let expires = expires + (3600 - expires.rem_euclid(3600));
    let tag = mac(secret, id, expires).finalize().into_bytes();
    format!("/files/{id}?exp={expires}&sig={:x}", HexDisplay(&tag))
}

/// Whether `signed` is a link to file `id` that has not expired at `now` (a unix time).
fn valid(secret: &[u8], id: Uuid, signed: &Signed, now: i64) -> bool {
    let mut tag = [0u8; 32];
    // Lower-case hex only, as `sign` writes it; a longer signature does not fit `tag`.
    let Ok(tag) = base16ct::lower::decode(&signed.sig, &mut tag) else {
        return false;
    };
    signed.exp >= now && mac(secret, id, signed.exp).verify_slice(tag).is_ok()
}

fn mac(secret: &[u8], id: Uuid, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{id}.{expires}").as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a link secret for tests";
    /// 2024-01-01T00:00:00Z, a whole hour.
    const NOW: i64 = 1_704_067_200;

    /// The parameters of a path made by `sign`.
    fn parse(path: &str) -> (Uuid, Signed) {
        let (file, query) = path.split_once('?').expect("a query");
        let id = file_id_of(file).expect("a file id");
        let (exp, sig) = query
            .strip_prefix("exp=")
            .and_then(|q| q.split_once("&sig="))
            .expect("exp and sig");
        let signed = Signed {
            exp: exp.parse().expect("a number"),
            sig: sig.to_string(),
        };
        (id, signed)
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let id = Uuid::new_v4();
        let (linked, signed) = parse(&sign(SECRET, id, NOW + 600));
        assert_eq!(linked, id);
        assert_eq!(signed.exp, NOW + 3600, "rounded up to the hour");
        assert_eq!(signed.sig.len(), 64);
        assert!(valid(SECRET, id, &signed, NOW));
        assert!(
            valid(SECRET, id, &signed, signed.exp),
            "valid through its last second"
        );
        assert!(!valid(SECRET, id, &signed, signed.exp + 1), "expired");
    }

    #[test]
    fn a_link_is_for_one_file_under_one_secret() {
        let id = Uuid::new_v4();
        let (_, signed) = parse(&sign(SECRET, id, NOW));
        assert!(!valid(SECRET, Uuid::new_v4(), &signed, NOW), "another file");
        assert!(
            !valid(b"another secret", id, &signed, NOW),
            "another secret"
        );
    }

    #[test]
    fn a_tampered_link_is_refused() {
        let id = Uuid::new_v4();
        let (_, signed) = parse(&sign(SECRET, id, NOW));
        let with = |exp: i64, sig: String| valid(SECRET, id, &Signed { exp, sig }, NOW);
        assert!(with(signed.exp, signed.sig.clone()));
        assert!(!with(signed.exp + 3600, signed.sig.clone()), "extended");
        let flipped = |i: usize| {
            let mut sig = signed.sig.clone().into_bytes();
            sig[i] = if sig[i] == b'0' { b'1' } else { b'0' };
            String::from_utf8(sig).expect("hex")
        };
        assert!(!with(signed.exp, flipped(0)), "first digit changed");
        assert!(!with(signed.exp, flipped(63)), "last digit changed");
        let sig = &signed.sig;
        assert!(!with(signed.exp, sig[..62].to_string()), "shortened");
        assert!(!with(signed.exp, format!("{sig}00")), "lengthened");
        assert!(!with(signed.exp, sig.to_uppercase()), "upper-case hex");
        assert!(!with(signed.exp, String::new()), "empty");
        assert!(!with(signed.exp, "zz".repeat(32)), "not hex");
    }

    #[test]
    fn the_file_id_is_read_from_public_and_signed_urls() {
        let id = Uuid::new_v4();
        assert_eq!(file_id_of(&format!("/files/{id}")), Some(id));
        assert_eq!(file_id_of(&sign(SECRET, id, NOW)), Some(id));
        assert_eq!(file_id_of(&format!("/files/{id}/name.png")), Some(id));
        assert_eq!(file_id_of("/avatars/x"), None);
        assert_eq!(file_id_of("/files/not-a-uuid"), None);
    }
}
