//! The SSRF-safe HTTP client every outbound Postern request goes through.
//!
//! Feed URLs, reputation services and above all the links found in mail
//! (the unshortener follows attacker-chosen redirects) must never make the
//! gateway reach into the network it sits in. Two doors are guarded:
//!
//! * host names go through [`GuardedResolver`], which drops every refused
//!   address before reqwest sees it;
//! * literal IP hosts never reach a resolver, so [`SafeClient::check_url`]
//!   refuses them itself; every request built here passes through it.
//!
//! Redirects are never followed by reqwest: a caller that follows one makes
//! a new request, so each hop is checked again.

mod ranges;
#[cfg(test)]
mod tests;

pub use ranges::refusal;

use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::IntelError;

/// What outbound requests may reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetPolicy {
    /// Lets 127.0.0.0/8 and `::1` (and nothing else) be dialed so tests can
    /// use fixture servers. Set from the config switch
    /// `POSTERN_TEST_ONLY_ALLOW_LOOPBACK_FETCH`; never on in production.
    pub allow_loopback_for_tests: bool,
}

/// An HTTP client that refuses private, loopback and otherwise internal
/// destinations, follows no redirects and uses no proxy.
#[derive(Clone)]
pub struct SafeClient {
    inner: reqwest::Client,
    policy: NetPolicy,
}

impl fmt::Debug for SafeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafeClient").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl SafeClient {
    /// Builds the client; `timeout` bounds each whole request.
    pub fn new(policy: NetPolicy, timeout: Duration) -> Result<Self, IntelError> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would do the DNS lookup and the connect itself, out of
            // the resolver's reach; environment proxies are ignored.
            .no_proxy()
            .user_agent(concat!("postern/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .dns_resolver(GuardedResolver { policy })
            .build()
            .map_err(|e| IntelError::Http(format!("building the HTTP client: {}", chain(&e))))?;
        Ok(SafeClient { inner, policy })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> NetPolicy {
        self.policy
    }

    /// Refuses what the resolver cannot see: schemes other than http(s),
    /// credentials in the URL, and literal IP hosts that [`refusal`]
    /// rejects (IPv6 in brackets included). Host names are left to the
    /// resolver, which checks every address they resolve to.
    pub fn check_url(&self, url: &Url) -> Result<(), IntelError> {
        let refused = |why: &str| IntelError::Refused {
            target: url.to_string(),
            why: why.to_owned(),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refused("only http and https may be fetched"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused("credentials in the URL"));
        }
        let ip = match url.host() {
            None => return Err(refused("no host")),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(v4)) => v4.into(),
            Some(Host::Ipv6(v6)) => v6.into(),
        };
        match refusal(ip, self.policy.allow_loopback_for_tests) {
            Some(why) => Err(refused(why)),
            None => Ok(()),
        }
    }

    /// Parses and checks `url`, then starts a request to it. Send it with
    /// [`SafeClient::send`] so errors come back as [`IntelError`].
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, IntelError> {
        let parsed = Url::parse(url).map_err(|e| IntelError::Refused {
            target: url.to_owned(),
            why: format!("not a URL: {e}"),
        })?;
        self.request_url(method, &parsed)
    }

    /// [`SafeClient::request`] for an already parsed URL.
    pub fn request_url(&self, method: reqwest::Method, url: &Url) -> Result<reqwest::RequestBuilder, IntelError> {
        self.check_url(url)?;
        Ok(self.inner.request(method, url.clone()))
    }

    /// A checked GET.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, IntelError> {
        self.request(reqwest::Method::GET, url)
    }

    /// Sends a request built by this client, mapping failures with
    /// [`http_error`].
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, IntelError> {
        request.send().await.map_err(http_error)
    }
}

/// Maps a reqwest failure to [`IntelError::Http`], except that a refusal
/// by the resolver (buried in the error's source chain) stays
/// [`IntelError::Refused`] so callers can tell policy from outage.
pub fn http_error(err: reqwest::Error) -> IntelError {
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<ResolveRefused>() {
            return IntelError::Refused {
                target: err.url().map_or_else(|| r.host.clone(), Url::to_string),
                why: r.to_string(),
            };
        }
        source = e.source();
    }
    IntelError::Http(chain(&err))
}

/// reqwest's own message omits its causes ("error sending request"), and
/// the cause is what an operator needs to read.
fn chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// The resolver's refusal, kept as a type so [`http_error`] can find it.
#[derive(Debug)]
struct ResolveRefused {
    host: String,
    ip: std::net::IpAddr,
    why: &'static str,
}

impl fmt::Display for ResolveRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} resolves only to refused addresses ({}: {})", self.host, self.ip, self.why)
    }
}

impl StdError for ResolveRefused {}

/// Resolves once and hands reqwest only the allowed addresses. reqwest
/// connects to exactly the addresses returned here and never resolves
/// again for that connection, so the address checked is the address
/// dialed: a DNS answer that changes between check and connect (rebinding)
/// has nothing to act on.
struct GuardedResolver {
    policy: NetPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.policy.allow_loopback_for_tests;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match refusal(addr.ip(), allow_loopback) {
                    None => true,
                    Some(why) => {
                        first_refusal.get_or_insert((addr.ip(), why));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(match first_refusal {
                    Some((ip, why)) => Box::new(ResolveRefused { host, ip, why }) as _,
                    None => format!("{host} has no addresses").into(),
                });
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}
