//! What a push subscription may name. The server POSTs to URLs its users give it, so an endpoint
//! must be `https://` at a public address: an IP literal is checked when it is registered and
//! again before every push, a host name when it is resolved (`PublicOnly`, the push client's
//! resolver), so a name that points into the server's own network is never reached. Hosts in
//! `GOFTGU_PUSH_ALLOW_HTTP_HOSTS` are exempt (tests, a push service on the local network). The
//! browser's keys are checked here too: a P-256 point and a 16-byte secret, base64url.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

use crate::{
    config::Push,
    error::{AppError, AppResult},
};

/// Longest accepted endpoint (the push services' run to a few hundred characters).
pub const ENDPOINT_MAX: usize = 1024;

/// The endpoint, if the server may POST to it.
pub fn check(config: &Push, text: &str) -> AppResult<Url> {
    let bad = |message: &str| AppError::bad_input("endpoint", message);
    if text.len() > ENDPOINT_MAX {
        return Err(bad(&format!(
            "the endpoint is longer than {ENDPOINT_MAX} characters"
        )));
    }
    let url = Url::parse(text).map_err(|_| bad("the endpoint must be an absolute URL"))?;
    let host = url
        .host_str()
        .ok_or_else(|| bad("the endpoint must name a host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the endpoint must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("the endpoint must not have a fragment"));
    }
    let exempt = allowed(&config.allow_http_hosts, host);
    match url.scheme() {
        "https" => {}
        "http" if exempt => {}
        _ => return Err(bad("the endpoint must be an https:// URL")),
    }
    if !exempt {
        // The URL parser has already normalised an IP literal (`2130706433`, `0x7f.1`, …).
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if literal.is_some_and(|ip| !is_public(ip)) || is_local_name(host) {
            return Err(bad("the endpoint must be at a public address"));
        }
    }
    Ok(url)
}

/// Whether `host` (as a URL writes it: IPv6 in brackets) is in the exempt list.
fn allowed(list: &[String], host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    list.iter().any(|allowed| {
        let allowed = allowed.trim();
        let allowed = allowed.trim_start_matches('[').trim_end_matches(']');
        !allowed.is_empty() && allowed.eq_ignore_ascii_case(bare)
    })
}

/// Names that always mean this machine.
pub fn is_local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Whether `ip` is reachable on the internet: not loopback, private, link-local, shared
/// (carrier NAT), reserved, documentation, multicast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64: could reach any IPv4
        || ip.to_ipv4().is_some()) // IPv4-compatible (deprecated)
}

/// Why a host name was not resolved (its addresses are all private, loopback, …).
pub const NO_PUBLIC_ADDRESS: &str = "the host has no public address";

/// The push client's resolver: a host name resolves only to its public addresses (the exempt
/// hosts to all of theirs); a name with none fails like an unknown one.
pub struct PublicOnly {
    exempt: Arc<[String]>,
}

impl PublicOnly {
    pub fn new(config: &Push) -> Self {
        Self {
            exempt: config.allow_http_hosts.clone().into(),
        }
    }

    /// No host exempt (link previews decide their exceptions per address and port).
    pub fn strict() -> Self {
        Self {
            exempt: Arc::from([]),
        }
    }
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let exempt = allowed(&self.exempt, name.as_str());
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| exempt || is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(NO_PUBLIC_ADDRESS.into());
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// The browser's public key (`p256dh`): an uncompressed P-256 point, base64url (padding
/// allowed). Returned without padding.
pub fn p256dh(text: &str) -> AppResult<(String, p256::PublicKey)> {
    let bad = || {
        AppError::bad_input(
            "p256dh",
            "p256dh must be an uncompressed P-256 public key (65 bytes), base64url",
        )
    };
    let bytes = decode(text).ok_or_else(bad)?;
    if bytes.len() != 65 || bytes[0] != 0x04 {
        return Err(bad());
    }
    let key = p256::PublicKey::from_sec1_bytes(&bytes).map_err(|_| bad())?;
    Ok((URL_SAFE_NO_PAD.encode(&bytes), key))
}

/// The browser's authentication secret (`auth`): 16 bytes, base64url (padding allowed).
/// Returned without padding.
pub fn auth(text: &str) -> AppResult<(String, [u8; 16])> {
    let bad = || AppError::bad_input("auth", "auth must be 16 bytes, base64url");
    let bytes: [u8; 16] = decode(text)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    Ok((URL_SAFE_NO_PAD.encode(bytes), bytes))
}

fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow: &[&str]) -> Push {
        let mut config = <crate::config::Config as clap::Parser>::parse_from(["goftgu"]).push;
        config.allow_http_hosts = allow.iter().map(|s| s.to_string()).collect();
        config
    }

    #[test]
    fn only_https_at_public_addresses_unless_exempt() {
        let none = config(&[]);
        let ok = [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/x",
            "https://8.8.8.8/x",
            "https://[2a00:1450::1]/x",
        ];
        for url in ok {
            assert!(check(&none, url).is_ok(), "{url}");
        }
        let refused = [
            "http://push.example.com/x",
            "ftp://push.example.com/x",
            "push.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://2130706433/x",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://[::ffff:192.168.0.1]/x",
            "https://localhost/x",
            "https://a.localhost./x",
            "https://user:pw@push.example.com/x",
        ];
        for url in refused {
            assert!(check(&none, url).is_err(), "{url}");
        }
        let long = format!("https://push.example.com/{}", "a".repeat(ENDPOINT_MAX));
        assert!(check(&none, &long).is_err());

        let exempt = config(&["127.0.0.1", "::1"]);
        assert!(check(&exempt, "http://127.0.0.1:4000/x").is_ok());
        assert!(check(&exempt, "http://[::1]:4000/x").is_ok());
        assert!(check(&exempt, "http://127.0.0.2:4000/x").is_err());
        assert!(check(&exempt, "http://push.example.com/x").is_err());
    }

    #[test]
    fn keys_are_a_point_and_sixteen_bytes() {
        let point = p256::SecretKey::from_slice(&[7u8; 32])
            .unwrap()
            .public_key();
        let sec1 = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, false);
        let text = URL_SAFE_NO_PAD.encode(sec1.as_bytes());
        assert_eq!(p256dh(&text).unwrap().0, text);
        let compressed = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, true);
        assert!(p256dh(&URL_SAFE_NO_PAD.encode(compressed.as_bytes())).is_err());
        let mut off_curve = sec1.as_bytes().to_vec();
        off_curve[64] ^= 1;
        assert!(p256dh(&URL_SAFE_NO_PAD.encode(&off_curve)).is_err());
        assert!(p256dh("not base64!").is_err());
        assert!(auth(&URL_SAFE_NO_PAD.encode([1u8; 16])).is_ok());
        assert!(auth("AQEBAQEBAQEBAQEBAQEBAQ==").is_ok());
        assert!(auth(&URL_SAFE_NO_PAD.encode([1u8; 15])).is_err());
    }
}
