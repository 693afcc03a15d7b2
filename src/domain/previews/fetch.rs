//! Fetching a page for its preview, safely: the server fetches URLs its users write, so every
//! hop (the link, then each redirect, followed by hand) must be `http(s)` and lead to a public
//! address: an IP literal is checked as written, a host name is resolved to public addresses
//! only (`PublicOnly`). Only `host:port` pairs in `GOFTGU_LINK_PREVIEW_ALLOW` are fetched at any
//! address; hosts in `GOFTGU_LINK_PREVIEW_DENY` never. No cookies, no proxy from the environment,
//! at most `GOFTGU_LINK_PREVIEW_MAX_BYTES` read and `GOFTGU_LINK_PREVIEW_TIMEOUT_MS` for the whole
//! fetch, and only HTML.
use std::{net::IpAddr, sync::Arc, time::Duration};

use reqwest::{Url, header};

use crate::{config::Previews, domain::push::endpoint};

/// Redirects followed at most.
const REDIRECTS_MAX: usize = 5;

/// Why a page gave no preview.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// A hop was not allowed (its scheme, address or host).
    Refused,
    /// No answer in time, an error status, not HTML, or a broken connection.
    Failed,
}

/// The two clients: one that resolves names to public addresses only, one for allowed pairs.
pub struct Clients {
    public: reqwest::Client,
    allowed: reqwest::Client,
}

impl Clients {
    pub fn new() -> reqwest::Result<Self> {
        let base = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .user_agent("goftgu-link-preview/1")
                .connect_timeout(Duration::from_secs(5))
        };
        Ok(Self {
            public: base()
                .dns_resolver(Arc::new(endpoint::PublicOnly::strict()))
                .build()?,
            allowed: base().build()?,
        })
    }
}

/// Which client may fetch `url`, if any may.
fn route<'a>(
    clients: &'a Clients,
    config: &Previews,
    url: &Url,
) -> Result<&'a reqwest::Client, Failure> {
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() {
        return Err(Failure::Refused);
    }
    let host = url.host_str().ok_or(Failure::Refused)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().ok_or(Failure::Refused)?;
    let denied = config.deny.iter().map(|d| d.trim()).any(|d| {
        !d.is_empty()
            && (bare.eq_ignore_ascii_case(d)
                || bare
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", d.to_ascii_lowercase())))
    });
    if denied {
        return Err(Failure::Refused);
    }
    let pair_allowed = config.allow.iter().any(|entry| {
        entry.trim().rsplit_once(':').is_some_and(|(h, p)| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(bare)
                && p.parse::<u16>() == Ok(port)
        })
    });
    if pair_allowed {
        return Ok(&clients.allowed);
    }
    match bare.parse::<IpAddr>() {
        Ok(ip) if endpoint::is_public(ip) => Ok(&clients.public),
        Ok(_) => Err(Failure::Refused),
        Err(_) if endpoint::is_local_name(bare) => Err(Failure::Refused),
        Err(_) => Ok(&clients.public),
    }
}

/// The page at `url` (after its redirects): its final URL and its first bytes as text.
pub async fn page(
    clients: &Clients,
    config: &Previews,
    url: Url,
) -> Result<(Url, String), Failure> {
    let within = Duration::from_millis(config.timeout_ms.max(1));
    tokio::time::timeout(within, follow(clients, config, url))
        .await
        .unwrap_or(Err(Failure::Failed))
}

async fn follow(clients: &Clients, config: &Previews, url: Url) -> Result<(Url, String), Failure> {
    let mut current = url;
    for _ in 0..=REDIRECTS_MAX {
        let client = route(clients, config, &current)?;
        let mut response = client
            .get(current.clone())
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .send()
            .await
            .map_err(|err| classify(&err))?;
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or(Failure::Failed)?;
            current = current.join(location).map_err(|_| Failure::Failed)?;
            continue;
        }
        if !response.status().is_success() {
            return Err(Failure::Failed);
        }
        let html = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .is_some_and(|t| {
                let t = t.to_ascii_lowercase();
                t.starts_with("text/html") || t.starts_with("application/xhtml+xml")
            });
        if !html {
            return Err(Failure::Failed);
        }
        let mut body = Vec::new();
        while body.len() < config.max_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(_) => return Err(Failure::Failed),
            }
        }
        body.truncate(config.max_bytes);
        return Ok((current, String::from_utf8_lossy(&body).into_owned()));
    }
    Err(Failure::Failed)
}

/// A refused name resolution is a refusal; anything else a failure.
fn classify(err: &reqwest::Error) -> Failure {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(cause) = source {
        if cause.to_string().contains(endpoint::NO_PUBLIC_ADDRESS) {
            return Failure::Refused;
        }
        source = cause.source();
    }
    Failure::Failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(allow: &[&str], deny: &[&str]) -> Previews {
        Previews {
            enabled: true,
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
            max_bytes: 1024,
            timeout_ms: 1000,
        }
    }

    #[test]
    fn only_public_addresses_unless_the_pair_is_allowed() {
        let clients = Clients::new().unwrap();
        let config = config(&["127.0.0.1:8080"], &["evil.example"]);
        let ok = |u: &str| route(&clients, &config, &Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://example.com/page"));
        assert!(ok("http://93.184.216.34/"));
        assert!(ok("http://127.0.0.1:8080/allowed"));
        for refused in [
            "http://127.0.0.1:8081/other-port",
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://localhost:8080/",
            "ftp://example.com/",
            "https://evil.example/",
            "https://www.evil.example/",
            "http://user@example.com/",
        ] {
            assert!(!ok(refused), "{refused}");
        }
    }
}
