//! Newly registered domains, from RDAP. Phishing domains are typically
//! used within days of registration; the From domain and the registrable
//! domains of the message's links are looked up at their registry's RDAP
//! server (found through the IANA bootstrap) and their age becomes a tag.

use super::bootstrap::{Bootstrap, MAX_BOOTSTRAP_BYTES};
use super::{Counters, RepCache, cache_get_json, cache_put_json, read_capped};
use crate::clock::SharedClock;
use crate::domain::Finding;
use crate::intel::IntelError;
use crate::intel::net::SafeClient;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner, urls};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Registered at most [`VERY_NEW_DAYS`] days ago.
pub const TAG_VERY_NEW: &str = "DOMAIN_VERY_NEW";
/// Registered at most `new_days` days ago (and not very new).
pub const TAG_NEWLY_REGISTERED: &str = "DOMAIN_NEWLY_REGISTERED";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_VERY_NEW, TAG_NEWLY_REGISTERED];

/// Age, in days, up to which a domain is very new.
pub const VERY_NEW_DAYS: i64 = 7;
/// Default age, in days, up to which a domain is newly registered.
pub const DEFAULT_NEW_DAYS: u32 = 30;
/// Domains looked up per message.
pub const MAX_DOMAINS: usize = 10;
/// Default deadline for the whole scan.
pub const DEFAULT_TIMEOUT: Duration = crate::scan::registry::RDAP.timeout;

const ID: &str = crate::scan::registry::RDAP.id;
const FOUND_TTL: Duration = Duration::from_secs(24 * 3600);
const UNKNOWN_TTL: Duration = Duration::from_secs(3600);
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// What is remembered about one domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Known {
    /// The registry does not know the name (404).
    Unknown,
    /// Registered; the date (Unix seconds) when the registry gives one.
    Found { registered: Option<i64>, via: String },
}

/// The part of an RDAP domain object (RFC 9083 §5.3) that is read.
#[derive(Deserialize)]
struct DomainObject {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    event_action: String,
    #[serde(default)]
    event_date: Option<String>,
}

/// The newly-registered-domain scanner.
pub struct RdapScanner {
    client: SafeClient,
    bootstrap: ArcSwap<Bootstrap>,
    cache: Arc<dyn RepCache>,
    clock: SharedClock,
    new_days: u32,
    timeout: Duration,
    counters: Counters,
}

impl RdapScanner {
    /// A scanner using the shipped bootstrap snapshot. `client` should be
    /// the SSRF-guarded one: RDAP servers come from a downloaded file.
    pub fn new(client: SafeClient, cache: Arc<dyn RepCache>, clock: SharedClock) -> Result<Self, IntelError> {
        Ok(Self {
            client,
            bootstrap: ArcSwap::from_pointee(Bootstrap::embedded()?),
            cache,
            clock,
            new_days: DEFAULT_NEW_DAYS,
            timeout: DEFAULT_TIMEOUT,
            counters: Counters::default(),
        })
    }

    /// Age in days up to which a domain counts as newly registered.
    pub fn with_new_days(mut self, days: u32) -> Self {
        self.new_days = days;
        self
    }

    /// Deadline for one message's lookups.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the bootstrap registry; returns the TLDs it covers.
    pub fn set_bootstrap(&self, b: Bootstrap) -> usize {
        let n = b.len();
        self.bootstrap.store(Arc::new(b));
        n
    }

    /// The bootstrap registry in use.
    pub fn bootstrap(&self) -> Arc<Bootstrap> {
        self.bootstrap.load_full()
    }

    /// Loads a bootstrap file saved earlier (e.g. with [`Bootstrap::to_json`]).
    pub fn load_bootstrap(&self, path: &Path) -> Result<usize, IntelError> {
        let text = std::fs::read_to_string(path)?;
        Ok(self.set_bootstrap(Bootstrap::parse(&text)?))
    }

    /// Downloads a bootstrap file (IANA: [`super::bootstrap::IANA_URL`])
    /// and swaps it in; on any failure the registry in use is kept.
    pub async fn refresh_bootstrap(&self, url: &str) -> Result<usize, IntelError> {
        let resp = self
            .client
            .get(url)?
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| IntelError::Http(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(IntelError::Http(format!("{url}: HTTP {}", resp.status())));
        }
        let body = read_capped(resp, MAX_BOOTSTRAP_BYTES)
            .await
            .map_err(|e| IntelError::Http(format!("{url}: {e}")))?;
        let text = String::from_utf8_lossy(&body);
        let n = self.set_bootstrap(Bootstrap::parse(&text)?);
        tracing::info!(url, tlds = n, "RDAP bootstrap refreshed");
        Ok(n)
    }

    async fn check(&self, input: &ScanInput) -> Result<Vec<Finding>, ScanError> {
        let bootstrap = self.bootstrap.load_full();
        let targets: Vec<(String, String)> = domains(input)
            .into_iter()
            .filter_map(|d| bootstrap.server_for(&d).map(|base| (d, base.to_string())))
            .collect();
        let answers = futures::future::join_all(targets.iter().map(|(d, base)| self.lookup(d, base))).await;
        let now = self.clock.now();
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        for ((domain, _), answer) in targets.iter().zip(answers) {
            match answer {
                Ok(Known::Found {
                    registered: Some(secs),
                    via,
                }) => {
                    if let Some(at) = DateTime::<Utc>::from_timestamp(secs, 0) {
                        findings.extend(self.judge(domain, at, &via, now));
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            tracing::warn!(scanner = ID, errors = ?errors, "some RDAP lookups failed");
            if errors.len() == targets.len() {
                return Err(ScanError::scanner(ID, errors.join("; ")));
            }
        }
        Ok(findings)
    }

    fn judge(&self, domain: &str, at: DateTime<Utc>, via: &str, now: DateTime<Utc>) -> Option<Finding> {
        let age = now - at;
        let tag = if age <= chrono::Duration::days(VERY_NEW_DAYS) {
            TAG_VERY_NEW
        } else if age <= chrono::Duration::days(i64::from(self.new_days)) {
            TAG_NEWLY_REGISTERED
        } else {
            return None;
        };
        let ago = match age.num_days().max(0) {
            1 => "1 day ago".to_string(),
            d => format!("{d} days ago"),
        };
        Some(Finding::new(
            tag,
            format!("{domain} registered {} ({ago}) via {via}", at.format("%Y-%m-%d")),
        ))
    }

    async fn lookup(&self, domain: &str, base: &str) -> Result<Known, String> {
        if let Some(known) = cache_get_json::<Known>(self.cache.as_ref(), ID, domain).await {
            Counters::bump(&self.counters.cache_hits);
            return Ok(known);
        }
        Counters::bump(&self.counters.lookups);
        let answer = self.ask(domain, base).await;
        match &answer {
            Ok(k @ Known::Unknown) => cache_put_json(self.cache.as_ref(), ID, domain, k, UNKNOWN_TTL).await,
            Ok(k) => cache_put_json(self.cache.as_ref(), ID, domain, k, FOUND_TTL).await,
            Err(_) => Counters::bump(&self.counters.errors),
        }
        answer
    }

    async fn ask(&self, domain: &str, base: &str) -> Result<Known, String> {
        let url = url::Url::parse(base)
            .and_then(|b| b.join(&format!("domain/{domain}")))
            .map_err(|e| format!("{domain}: bad RDAP base {base}: {e}"))?;
        let via = url.host_str().unwrap_or_default().to_string();
        let resp = self
            .client
            .request_url(reqwest::Method::GET, &url)
            .map_err(|e| format!("{domain}: {e}"))?
            .header(reqwest::header::ACCEPT, "application/rdap+json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("{domain}: {e}"))?;
        match resp.status().as_u16() {
            404 => return Ok(Known::Unknown),
            200 => {}
            s => return Err(format!("{domain}: {via} answered HTTP {s}")),
        }
        let body = read_capped(resp, MAX_ANSWER_BYTES).await.map_err(|e| format!("{domain}: {e}"))?;
        let obj: DomainObject = serde_json::from_slice(&body).map_err(|e| format!("{domain}: unreadable RDAP answer from {via}: {e}"))?;
        let registered = obj
            .events
            .iter()
            .filter(|e| e.event_action.eq_ignore_ascii_case("registration"))
            .filter_map(|e| e.event_date.as_deref())
            .find_map(|d| DateTime::parse_from_rfc3339(d.trim()).ok())
            .map(|d| d.timestamp());
        Ok(Known::Found { registered, via })
    }
}

/// The From domain and the registrable domains of the URLs, ASCII (IDNA),
/// de-duplicated, in message order, at most [`MAX_DOMAINS`].
fn domains(input: &ScanInput) -> Vec<String> {
    let from = input.from_domain.as_deref().and_then(|d| url::Host::parse(d.trim()).ok());
    let hosts = input
        .urls
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .filter_map(|u| u.host().map(|h| h.to_owned()));
    let mut out: Vec<String> = Vec::new();
    for host in from.into_iter().chain(hosts) {
        let url::Host::Domain(name) = host else { continue };
        let Some(reg) = urls::registrable(&name) else { continue };
        if !out.contains(&reg) {
            out.push(reg);
            if out.len() == MAX_DOMAINS {
                break;
            }
        }
    }
    out
}

impl Scanner for RdapScanner {
    fn id(&self) -> &'static str {
        ID
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        FailureMode::Open
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(self.check(input))
    }
    fn health(&self) -> BoxFuture<'_, Result<String, ScanError>> {
        let b = self.bootstrap.load();
        let line = format!(
            "bootstrap: {} TLDs (published {}); {}",
            b.len(),
            b.publication(),
            self.counters.summary()
        );
        Box::pin(async move { Ok(line) })
    }
}

#[cfg(test)]
mod tests;
