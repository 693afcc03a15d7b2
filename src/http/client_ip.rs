//! The client's address, for the per-address limits: the socket's peer or, when that peer is a
//! configured trusted proxy, the right-most `X-Forwarded-For` address that is not itself trusted
//! (everything left of it may have been written by the client, so a spoofed header from anyone
//! else changes nothing).
use std::{
    convert::Infallible,
    net::{IpAddr, SocketAddr},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};
use ipnet::IpNet;

use super::HttpState;
use crate::limits::ClientIp;

/// The client of a request whose parts these are.
pub fn of(parts: &Parts, trusted: &[IpNet]) -> ClientIp {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical());
    ClientIp(peer.map(|peer| resolve(peer, &parts.headers, trusted)))
}

impl FromRequestParts<HttpState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> Result<Self, Infallible> {
        Ok(of(parts, &state.app.config.trusted_proxies))
    }
}

fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // Something unreadable was not written by a proxy: keep the last address known.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `2001:db8::1`, or either with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(peer: &str, xff: &[&str], trusted: &[&str]) -> IpAddr {
        let mut headers = HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        resolve(peer.parse().unwrap(), &headers, &trusted)
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        // An untrusted peer's header is ignored.
        assert_eq!(
            client("9.9.9.9", &["1.1.1.1"], &[]),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
        // Behind one proxy: the address it appended, not what the client wrote before it.
        let via_proxy = client("10.0.0.2", &["6.6.6.6, 1.1.1.1"], &["10.0.0.0/8"]);
        assert_eq!(via_proxy, "1.1.1.1".parse::<IpAddr>().unwrap());
        // Through two trusted hops (and two header lines).
        let two = client(
            "10.0.0.2",
            &["6.6.6.6, 1.1.1.1", "10.0.0.7"],
            &["10.0.0.0/8"],
        );
        assert_eq!(two, "1.1.1.1".parse::<IpAddr>().unwrap());
        // No header: the proxy itself.
        assert_eq!(
            client("10.0.0.2", &[], &["10.0.0.2/32"]),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        // Garbage where an address should be: the last address a proxy vouched for.
        let garbage = client("10.0.0.2", &["junk, 10.0.0.9"], &["10.0.0.0/8"]);
        assert_eq!(garbage, "10.0.0.9".parse::<IpAddr>().unwrap());
        // Ports and IPv6 forms.
        let v6 = client("10.0.0.2", &["[2001:db8::1]:443"], &["10.0.0.0/8"]);
        assert_eq!(v6, "2001:db8::1".parse::<IpAddr>().unwrap());
    }
}
