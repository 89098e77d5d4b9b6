//! Follows the redirects of shortened links so the scanners and threat
//! feeds see where a link really goes.
//!
//! Only links on a known shortener (or an operator-added domain) are
//! expanded: fetching every link in every mail would tell senders which
//! messages were opened by the gateway and hammer arbitrary sites. Every
//! hop goes through [`SafeClient`], so a chain that leads into the local
//! network stops there with [`Stop::Refused`].

mod rate;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, header::LOCATION};
use tokio::time::Instant;
use url::Url;

use super::IntelError;
use super::net::SafeClient;
use rate::RateLimit;

/// Link shorteners and redirectors whose links are expanded by default
/// (`rules/shorteners.txt`). A host matches when it is one of these or a
/// subdomain of one.
fn shortener_domains() -> &'static [String] {
    crate::scan::scanners::lures::shipped_shorteners()
}

/// How links are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnshortenOptions {
    /// Redirects followed at most per link.
    pub max_hops: usize,
    /// The whole expansion of one link, waiting for the rate limit
    /// included.
    pub deadline: Duration,
    /// Requests a second across every caller of one [`Unshortener`]; 0
    /// means no limit.
    pub per_second: u32,
    /// Domains expanded besides the shipped shorteners (subdomains match).
    pub extra_domains: Vec<String>,
    /// Expand every link, not just shortened ones.
    pub any_domain: bool,
}

impl Default for UnshortenOptions {
    fn default() -> Self {
        UnshortenOptions {
            max_hops: 5,
            deadline: Duration::from_secs(5),
            per_second: 5,
            extra_domains: Vec::new(),
            any_domain: false,
        }
    }
}

/// Why an expansion ended before reaching a page that does not redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `max_hops` redirects were followed and the last one redirects again.
    HopLimit,
    /// The deadline passed (possibly while waiting for the rate limit).
    Deadline,
    /// The next hop is a destination [`SafeClient`] refuses.
    Refused(String),
    /// A hop could not be fetched or its redirect could not be read.
    Failed(String),
    /// The link is not on a shortener; nothing was fetched.
    NotShortener,
}

/// Where a link led.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    /// The link as found.
    pub start: Url,
    /// Every URL a redirect pointed to, in order; a refused destination is
    /// included (as the last one) although it was never fetched.
    pub hops: Vec<Url>,
    /// The last of `hops`, or `start` when there are none. When `stopped`
    /// is set this is where the chain was cut, not necessarily a landing
    /// page; callers must check it (and the hops) against the threat feeds
    /// whatever the outcome.
    pub final_url: Url,
    /// `None` when the chain ended at a response that does not redirect.
    pub stopped: Option<Stop>,
}

/// Expands shortened links. Clones share one rate limit, so a process
/// should build one and clone it.
#[derive(Debug, Clone)]
pub struct Unshortener {
    client: SafeClient,
    opts: Arc<UnshortenOptions>,
    limit: Arc<RateLimit>,
}

impl Unshortener {
    /// An unshortener making its requests through `client`.
    pub fn new(client: SafeClient, mut opts: UnshortenOptions) -> Self {
        opts.extra_domains = opts
            .extra_domains
            .iter()
            .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        let limit = Arc::new(RateLimit::new(opts.per_second));
        Unshortener {
            client,
            opts: Arc::new(opts),
            limit,
        }
    }

    /// Whether `url`'s host is a known shortener or an extra domain (or one
    /// of their subdomains). Ignores `any_domain`.
    pub fn is_shortener(&self, url: &Url) -> bool {
        // IP hosts never match: a suffix of an address is not a domain.
        let Some(url::Host::Domain(host)) = url.host() else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let on = |domain: &str| crate::scan::urls::on_domain(&host, domain);
        shortener_domains().iter().any(|d| on(d)) || self.opts.extra_domains.iter().any(|d| on(d))
    }

    /// Follows `url`'s redirects within the hop limit and the deadline.
    pub async fn expand(&self, url: &Url) -> Expansion {
        let mut hops = Vec::new();
        let stopped = if !self.opts.any_domain && !self.is_shortener(url) {
            Some(Stop::NotShortener)
        } else {
            let until = Instant::now() + self.opts.deadline;
            match tokio::time::timeout_at(until, self.walk(url, &mut hops, until)).await {
                Ok(stopped) => stopped,
                Err(_elapsed) => Some(Stop::Deadline),
            }
        };
        let final_url = hops.last().unwrap_or(url).clone();
        Expansion {
            start: url.clone(),
            hops,
            final_url,
            stopped,
        }
    }

    /// Pushes each redirect target onto `hops` as soon as it is known, so
    /// a deadline that cuts the walk short still leaves the chain so far.
    async fn walk(&self, start: &Url, hops: &mut Vec<Url>, until: Instant) -> Option<Stop> {
        let mut current = start.clone();
        loop {
            let response = match self.fetch(&current, until).await {
                Ok(r) => r,
                Err(stop) => return Some(stop),
            };
            let status = response.status();
            if !is_redirect(status) {
                return None;
            }
            let Some(location) = response.headers().get(LOCATION) else {
                return Some(Stop::Failed(format!("{status} without a Location from {current}")));
            };
            let next = match location.to_str().map(|l| current.join(l.trim())) {
                Ok(Ok(next)) => next,
                _ => {
                    return Some(Stop::Failed(format!("unreadable Location {location:?} from {current}")));
                }
            };
            if hops.len() >= self.opts.max_hops {
                return Some(Stop::HopLimit);
            }
            hops.push(next.clone());
            current = next;
        }
    }

    /// One hop: HEAD, and GET when HEAD fails or the server rejects it.
    /// The GET's body is never read: dropping the response closes it.
    async fn fetch(&self, url: &Url, until: Instant) -> Result<reqwest::Response, Stop> {
        match self.send(Method::HEAD, url, until).await? {
            Ok(r) if !rejects_head(r.status()) => return Ok(r),
            Ok(_) | Err(IntelError::Http(_)) => {}
            Err(e) => return Err(stop_for(e)),
        }
        match self.send(Method::GET, url, until).await? {
            Ok(r) => Ok(r),
            Err(e) => Err(stop_for(e)),
        }
    }

    /// A rate-limited request. The outer error is the deadline; the inner
    /// one what the client said.
    async fn send(&self, method: Method, url: &Url, until: Instant) -> Result<Result<reqwest::Response, IntelError>, Stop> {
        // Refused before taking a slot: a URL nobody will fetch costs
        // the other callers nothing.
        let request = match self.client.request_url(method, url) {
            Ok(r) => r,
            Err(e) => return Err(stop_for(e)),
        };
        if !self.limit.acquire(until).await {
            return Err(Stop::Deadline);
        }
        Ok(self.client.send(request).await)
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Statuses with which servers turn HEAD away while GET would work.
fn rejects_head(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 403 | 405 | 501)
}

fn stop_for(err: IntelError) -> Stop {
    match err {
        IntelError::Refused { .. } => Stop::Refused(err.to_string()),
        other => Stop::Failed(other.to_string()),
    }
}
