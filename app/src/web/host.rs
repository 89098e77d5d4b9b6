//! Host and origin checks, against DNS rebinding and cross-site writes.
//!
//! Issue 16: `Host: attacker.example` was served, so a page on a rebinding
//! domain in a browser on the Postern host could read `/metrics` and call
//! `/api/scan` (both gated only by the loopback address the browser itself
//! connects from). Requests naming any other host are refused with 421
//! Misdirected Request. State-changing requests also have their `Origin`
//! and `Sec-Fetch-Site` checked, as defence in depth beside the CSRF token.

use super::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// One allowed `Host` value: a name or address, with a port or any port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: String,
    port: Option<u16>,
}

/// The `Host` values the dashboard answers to.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedHosts {
    entries: Vec<Entry>,
    /// Listening on 0.0.0.0 or `::`: any literal address is fine on this
    /// port (a rebinding attack needs a *name*, so literal addresses cannot
    /// carry one).
    any_literal_port: Option<u16>,
}

/// Splits `host[:port]` (IPv6 in brackets), lowercased, trailing dot dropped.
fn split(value: &str) -> Option<(String, Option<u16>)> {
    let v = value.trim().to_ascii_lowercase();
    let (host, port) = if let Some(rest) = v.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if tail.is_empty() => None,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match v.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p.parse().ok()?)),
            Some(_) => (v.clone(), None),
            None => (v.clone(), None),
        }
    };
    let host = host.trim_end_matches('.').to_string();
    (!host.is_empty()).then_some((host, port))
}

impl AllowedHosts {
    /// `explicit` (`POSTERN_ALLOWED_HOSTS`) when given; otherwise the host of
    /// `public_url` and the listen address (plus `localhost` when that is a
    /// loopback address).
    pub(crate) fn new(explicit: &[String], public_url: Option<&str>, listen: SocketAddr) -> Self {
        let mut out = AllowedHosts::default();
        if !explicit.is_empty() {
            out.entries = explicit
                .iter()
                .filter_map(|e| split(e))
                .map(|(host, port)| Entry { host, port })
                .collect();
            return out;
        }
        if let Some(u) = public_url.and_then(|u| url::Url::parse(u).ok())
            && let Some(h) = u.host_str()
        {
            let host = h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
            out.entries.push(Entry { host, port: u.port() });
        }
        out.add_listen(listen);
        out
    }

    /// Adds the address actually bound (port 0 resolves only then).
    pub(crate) fn add_listen(&mut self, listen: SocketAddr) {
        let port = Some(listen.port()).filter(|p| *p != 0);
        if listen.ip().is_unspecified() {
            self.any_literal_port = port.or(self.any_literal_port);
            return;
        }
        self.entries.push(Entry {
            host: listen.ip().to_string(),
            port,
        });
        if listen.ip().is_loopback() {
            self.entries.push(Entry {
                host: "localhost".into(),
                port,
            });
        }
    }

    /// Whether `value` (a `Host` header or an origin's authority) names us.
    pub(crate) fn allows(&self, value: &str) -> bool {
        let Some((host, port)) = split(value) else {
            return false;
        };
        let port_ok = |want: Option<u16>| want.is_none() || want == port;
        if self.any_literal_port.is_some() && host.parse::<IpAddr>().is_ok() && port_ok(self.any_literal_port) {
            return true;
        }
        self.entries.iter().any(|e| e.host == host && port_ok(e.port))
    }
}

/// The host a request names: its `Host` header, or the URI authority
/// (HTTP/2). `None` when it names none (only non-browser clients omit it,
/// and they are no rebinding vector).
fn requested_host(req: &Request) -> Option<String> {
    match req.headers().get(header::HOST) {
        Some(h) => Some(h.to_str().unwrap_or("\u{0}").to_string()),
        None => req.uri().authority().map(|a| a.as_str().to_string()),
    }
}

fn misdirected() -> Response {
    (StatusCode::MISDIRECTED_REQUEST, "misdirected request: unknown host\n").into_response()
}

fn cross_site() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({"error": "cross-site request refused"})),
    )
        .into_response()
}

/// Whether an unsafe request comes from another site, judged by the headers
/// browsers add. `Sec-Fetch-Site`, when sent, decides: the browser sets it
/// and a page cannot. Without it, a foreign `Origin` is refused. `Origin:
/// null` says nothing either way: Chromium sends it for our own same-origin
/// form posts because every page is served with `Referrer-Policy:
/// no-referrer`, so the CSRF token decides those.
fn from_other_site(allowed: &AllowedHosts, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none` is a user typing or bookmarking; same-site is another
        // subdomain, which may be someone else's.
        return !matches!(site.to_str().unwrap_or(""), "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("")) {
        None | Some("null") => false,
        Some(o) => match url::Url::parse(o) {
            Ok(u) => {
                let authority = match (u.host_str(), u.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    (None, _) => return true,
                };
                !allowed.allows(&authority)
            }
            Err(_) => true,
        },
    }
}

/// Middleware on every route: 421 for a foreign `Host`, 403 for an unsafe
/// request from another site.
pub(crate) async fn host_layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let allowed = st.allowed_hosts();
    if let Some(h) = requested_host(&req)
        && !allowed.allows(&h)
    {
        tracing::debug!(host = %h, "request for an unknown host refused");
        return misdirected();
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && from_other_site(&allowed, req.headers()) {
        return cross_site();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_public_url_and_listen_address() {
        let a = AllowedHosts::new(&[], Some("https://postern.example.org/"), "127.0.0.1:8025".parse().unwrap());
        for ok in [
            "postern.example.org",
            "POSTERN.example.org.",
            "postern.example.org:443",
            "127.0.0.1:8025",
            "localhost:8025",
        ] {
            assert!(a.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example",
            "127.0.0.1:8026",
            "localhost:9",
            "",
            "[::1]:8025",
            "postern.example.org.attacker.example",
        ] {
            assert!(!a.allows(bad), "{bad}");
        }
    }

    #[test]
    fn unspecified_listen_allows_literal_addresses_only() {
        let a = AllowedHosts::new(&[], None, "0.0.0.0:8025".parse().unwrap());
        assert!(a.allows("192.0.2.4:8025"));
        assert!(a.allows("[2001:db8::1]:8025"));
        assert!(!a.allows("rebind.attacker.example:8025"));
        assert!(!a.allows("192.0.2.4:9999"));
    }

    #[test]
    fn explicit_list_replaces_defaults() {
        let a = AllowedHosts::new(
            &["mail-gw.lan:8025".into(), "[::1]".into()],
            None,
            "127.0.0.1:8025".parse().unwrap(),
        );
        assert!(a.allows("mail-gw.lan:8025"));
        assert!(a.allows("[::1]:1234"));
        assert!(!a.allows("127.0.0.1:8025"));
    }
}
