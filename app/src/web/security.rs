//! Response hardening, client addresses and CIDR gates.

use super::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Largest request body accepted (raw EML for `/api/scan` included).
pub(crate) const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// How long a request may take, body upload included, before it is
/// answered 408. Bounds slow-body (slowloris) uploads; long enough for
/// `/api/scan` with every scanner at its own deadline, and for an account
/// "Test login" (capped at 20 s). The event stream is exempt: it is meant
/// to stay open.
pub(crate) const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A fresh per-response nonce for `script-src` and `style-src`.
#[derive(Debug, Clone)]
pub(crate) struct Nonce(pub(crate) String);

/// The client's address, after trusted-proxy resolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// The Content-Security-Policy of every page: no script without the nonce
/// (every `<script>`, inline or not, carries it, so `'self'` is not needed
/// and would let any same-origin file run), nothing from other origins,
/// never framed.
pub(crate) fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'"
    )
}

/// Adds the security headers (and the client address) to every exchange.
/// A handler that set its own CSP (the sandboxed mail preview) keeps it.
pub(crate) async fn headers(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let nonce = Nonce(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>()));
    let ip = client_ip(&st, &req);
    req.extensions_mut().insert(nonce.clone());
    req.extensions_mut().insert(ip);
    let mut resp = next.run(req).await;
    st.metrics.count(resp.status());
    let h = resp.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(v) = HeaderValue::from_str(&page_csp(&nonce.0))
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Answers 408 when a request outlives [`REQUEST_TIMEOUT`] (except the
/// event stream).
pub(crate) async fn timeout_layer(req: Request, next: Next) -> Response {
    if req.uri().path() == "/events" {
        return next.run(req).await;
    }
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timeout\n").into_response(),
    }
}

/// The peer address, or the client named in `X-Forwarded-For` when the peer
/// is a trusted proxy: the rightmost hop that is not itself a trusted proxy.
fn client_ip(st: &AppState, req: &Request) -> ClientIp {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    ClientIp(resolve(peer, req.headers(), &st.web.trusted_proxies))
}

/// Walks `X-Forwarded-For` from the right, starting at the peer. Each hop
/// is believed only while the one who wrote it is a trusted proxy. A hop
/// that does not parse as a bare address (`ip:port`, `unknown`,
/// `[v6]:port`) ends the walk at the proxy that wrote it (issue 16):
/// skipping it would hand the answer to whatever the client put further
/// left.
pub(crate) fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut current = peer;
    for hop in hops.into_iter().rev() {
        if !is_trusted(&current) {
            break;
        }
        match hop.parse::<IpAddr>() {
            Ok(ip) => current = ip,
            Err(_) => break,
        }
    }
    current
}

fn allowed(allow: &[ipnet::IpNet], req: &Request) -> bool {
    req.extensions()
        .get::<ClientIp>()
        .is_some_and(|c| allow.iter().any(|n| n.contains(&c.0)))
}

fn refused() -> Response {
    (StatusCode::FORBIDDEN, "forbidden\n").into_response()
}

pub(crate) async fn metrics_cidr(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !allowed(&st.web.metrics_allow, &req) {
        return refused();
    }
    next.run(req).await
}

pub(crate) async fn scan_cidr(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !allowed(&st.web.scan_api_allow, &req) {
        return refused();
    }
    next.run(req).await
}

/// Constant-time comparison for tokens.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 198.51.100.7, 10.0.0.2"));
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(resolve(peer, &h, &trusted), "198.51.100.7".parse::<IpAddr>().unwrap());
        let outsider: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(resolve(outsider, &h, &trusted), outsider, "untrusted peers cannot claim an address");
    }

    /// Issue 16, hole 4: an unparseable hop let the attacker's leftmost
    /// entries decide the address.
    #[test]
    fn issue_16_unparseable_hop_stops_at_the_proxy_that_wrote_it() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        for bad in ["203.0.113.9:4711", "unknown", "[2001:db8::1]:443", "", "_hidden"] {
            let mut h = HeaderMap::new();
            let v = format!("127.0.0.1, {bad}");
            h.insert("x-forwarded-for", HeaderValue::from_str(&v).unwrap());
            assert_eq!(resolve(peer, &h, &trusted), peer, "{v}");
            let v = format!("127.0.0.1, {bad}, 10.0.0.3");
            h.insert("x-forwarded-for", HeaderValue::from_str(&v).unwrap());
            assert_eq!(resolve(peer, &h, &trusted), "10.0.0.3".parse::<IpAddr>().unwrap(), "{v}");
        }
        // A non-ASCII header cannot be read at all: it is one bad hop.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
        h.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(resolve(peer, &h, &trusted), peer);
    }

    /// Issue 16: `script-src 'self'` sat beside the nonce.
    #[test]
    fn issue_16_scripts_need_the_nonce() {
        let csp = page_csp("abc");
        let script = csp.split(';').find(|d| d.trim().starts_with("script-src")).unwrap();
        assert_eq!(script.trim(), "script-src 'nonce-abc'");
    }

    #[test]
    fn token_comparison() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
