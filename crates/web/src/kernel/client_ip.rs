//! The client's address and the request id, read through `trusted_proxies`
//! ([`raxx_core::client_ip`] holds the rule). The gate calls these once per request; the
//! audit log, sessions and the sign-in throttle all take the address from its `Ctx`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request};
use raxx_core::client_ip::{accept_request_id, client_ip as resolve};

use crate::kernel::state::AppState;

/// The TCP peer, unless it is a trusted proxy: then the right-most untrusted address of
/// the configured forwarding header. `None` only where no peer is known (in-process tests).
pub fn client_ip(state: &AppState, req: &Request) -> Option<String> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let cfg = &state.cfg;
    if cfg.trusted_proxies.is_empty() {
        return Some(peer.to_canonical().to_string());
    }
    let header = cfg.config.client_ip_header;
    let values: Vec<&str> = req
        .headers()
        .get_all(header.name())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(resolve(peer, &cfg.trusted_proxies, header, &values).to_string())
}

/// The proxy's `X-Request-Id` when the peer is a trusted proxy and the id is plain;
/// otherwise a fresh one.
pub fn request_id(state: &AppState, req: &Request) -> String {
    let trusted_peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| state.cfg.trusted_proxies.contains(c.0.ip()));
    trusted_peer
        .then(|| req.headers().get("x-request-id")?.to_str().ok())
        .flatten()
        .and_then(accept_request_id)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}
