//! The outbound HTTP client every part of the console uses (providers, checks, webhooks,
//! the staging source): rustls, a request timeout, and names under `.localhost`
//! resolved to loopback by the client itself (RFC 6761), since the OS resolver may not.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A client with [`http_client_builder`]'s settings.
///
/// # Panics
/// Only if the TLS backend cannot initialise, as `reqwest::Client::new` does; callers
/// that must not panic can use `http_client_builder(timeout).build()`.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    http_client_builder(timeout)
        .build()
        .expect("building the HTTP client (rustls with bundled roots) cannot fail")
}

/// The builder behind [`http_client`], for callers that need one more setting (a
/// redirect policy, default headers) without losing the `.localhost` resolution.
pub fn http_client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("raxx-console/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(LoopbackAwareResolver))
}

/// True for `localhost` and any name under `.localhost` (case-insensitive, trailing dot
/// allowed).
pub fn is_localhost_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Resolves `.localhost` names to 127.0.0.1 and everything else through the system
/// resolver.
struct LoopbackAwareResolver;

impl Resolve for LoopbackAwareResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            if is_localhost_name(&host) {
                // Port 0 is replaced by the URL's port (or the scheme's default).
                let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
                let addrs: Addrs = Box::new(std::iter::once(loopback));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names_are_recognised() {
        let cases = [
            ("localhost", true),
            ("LOCALHOST.", true),
            ("staging.localhost", true),
            ("api.heroku.Localhost", true),
            ("localhost.example.com", false),
            ("notlocalhost", false),
            ("api.heroku.com", false),
            ("127.0.0.1", false),
        ];
        for (host, want) in cases {
            assert_eq!(is_localhost_name(host), want, "{host}");
        }
    }
}
