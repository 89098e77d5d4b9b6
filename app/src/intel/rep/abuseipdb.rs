//! AbuseIPDB: how often the IP that handed us the message has been
//! reported for abuse. Only the trusted sending IP is asked about, and only
//! when it is a public address.

use super::limit::Backoff;
use super::{Counters, RepCache, cache_get_json, cache_put_json, read_capped};
use crate::clock::SharedClock;
use crate::domain::Finding;
use crate::intel::net::SafeClient;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Abuse confidence ≥ [`HIGH_SCORE`].
pub const TAG_HIGH: &str = "ABUSEIPDB_HIGH";
/// Abuse confidence from [`MEDIUM_SCORE`] up to [`HIGH_SCORE`].
pub const TAG_MEDIUM: &str = "ABUSEIPDB_MEDIUM";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_HIGH, TAG_MEDIUM];

/// Lowest score that is high.
pub const HIGH_SCORE: u32 = 75;
/// Lowest score that is medium.
pub const MEDIUM_SCORE: u32 = 25;
/// The public API.
pub const DEFAULT_BASE: &str = "https://api.abuseipdb.com/api/v2";
/// Default deadline for one lookup.
pub const DEFAULT_TIMEOUT: Duration = crate::scan::registry::ABUSEIPDB.timeout;

const ID: &str = crate::scan::registry::ABUSEIPDB.id;
const TTL: Duration = Duration::from_secs(6 * 3600);
const MAX_AGE_DAYS: &str = "90";
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// `GET /check` answer.
#[derive(Deserialize)]
struct Reply {
    data: Report,
}

/// The fields of a report that are used (and cached).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    #[serde(default)]
    is_whitelisted: Option<bool>,
    abuse_confidence_score: u32,
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    usage_type: Option<String>,
    #[serde(default)]
    isp: Option<String>,
    #[serde(default)]
    is_tor: Option<bool>,
    #[serde(default)]
    total_reports: u64,
    #[serde(default)]
    num_distinct_users: u64,
    #[serde(default)]
    last_reported_at: Option<String>,
}

/// Error body: `{"errors":[{"detail":…,"status":…}]}`.
#[derive(Deserialize)]
struct Errors {
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    detail: String,
}

/// The AbuseIPDB scanner.
pub struct AbuseIpdbScanner {
    client: SafeClient,
    base: String,
    key: String,
    cache: Arc<dyn RepCache>,
    clock: SharedClock,
    timeout: Duration,
    counters: Counters,
    backoff: Backoff,
    /// `X-RateLimit-Remaining` of the last answer; -1 before any.
    remaining: AtomicI64,
}

impl AbuseIpdbScanner {
    /// `base` is the API root, e.g. [`DEFAULT_BASE`].
    pub fn new(client: SafeClient, base: &str, key: impl Into<String>, cache: Arc<dyn RepCache>, clock: SharedClock) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            key: key.into(),
            cache,
            clock,
            timeout: DEFAULT_TIMEOUT,
            counters: Counters::default(),
            backoff: Backoff::default(),
            remaining: AtomicI64::new(-1),
        }
    }

    /// Deadline for one lookup.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn check(&self, input: &ScanInput) -> Result<Vec<Finding>, ScanError> {
        let Some(ip) = input.sender_ip.filter(|ip| is_public(*ip)) else {
            return Ok(Vec::new());
        };
        let key = ip.to_string();
        let report = match cache_get_json::<Report>(self.cache.as_ref(), ID, &key).await {
            Some(r) => {
                Counters::bump(&self.counters.cache_hits);
                r
            }
            None => {
                if let Some(until) = self.backoff.until(self.clock.now()) {
                    Counters::bump(&self.counters.skipped);
                    return Err(ScanError::scanner(ID, format!("rate-limited until {until}")));
                }
                let r = self.ask(&key).await.inspect_err(|_| Counters::bump(&self.counters.errors))?;
                cache_put_json(self.cache.as_ref(), ID, &key, &r, TTL).await;
                r
            }
        };
        Ok(judge(&key, &report).into_iter().collect())
    }

    async fn ask(&self, ip: &str) -> Result<Report, ScanError> {
        let now = self.clock.now();
        let mut url = url::Url::parse(&format!("{}/check", self.base)).map_err(|e| ScanError::scanner(ID, e))?;
        url.query_pairs_mut()
            .append_pair("ipAddress", ip)
            .append_pair("maxAgeInDays", MAX_AGE_DAYS);
        Counters::bump(&self.counters.lookups);
        // The checked path: a literal-IP base URL must not receive the key.
        let resp = self
            .client
            .request_url(reqwest::Method::GET, &url)
            .map_err(|e| ScanError::scanner(ID, e))?
            .header("Key", &self.key)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| ScanError::scanner(ID, e))?;
        let status = resp.status();
        if let Some(left) = resp
            .headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            self.remaining.store(left, Ordering::Relaxed);
        }
        if status.as_u16() == 429 {
            let until = self.backoff.pause(resp.headers(), now, chrono::Duration::minutes(5));
            tracing::warn!(scanner = ID, %until, "AbuseIPDB rate limit reached");
            return Err(ScanError::scanner(ID, format!("rate-limited (HTTP 429) until {until}")));
        }
        let body = read_capped(resp, MAX_ANSWER_BYTES).await.map_err(|e| ScanError::scanner(ID, e))?;
        if !status.is_success() {
            let why = serde_json::from_slice::<Errors>(&body)
                .ok()
                .and_then(|e| e.errors.into_iter().next())
                .map(|e| format!(": {}", e.detail))
                .unwrap_or_default();
            return Err(ScanError::scanner(ID, format!("HTTP {status}{why}")));
        }
        let reply: Reply = serde_json::from_slice(&body).map_err(|e| ScanError::scanner(ID, format!("unreadable answer: {e}")))?;
        Ok(reply.data)
    }
}

fn judge(ip: &str, r: &Report) -> Option<Finding> {
    if r.is_whitelisted == Some(true) {
        return None;
    }
    let score = r.abuse_confidence_score;
    let tag = match score {
        s if s >= HIGH_SCORE => TAG_HIGH,
        s if s >= MEDIUM_SCORE => TAG_MEDIUM,
        _ => return None,
    };
    let mut detail = format!(
        "{ip} abuse confidence {score}% ({} reports from {} users",
        r.total_reports, r.num_distinct_users
    );
    if let Some(last) = &r.last_reported_at {
        detail.push_str(&format!(", last {last}"));
    }
    detail.push(')');
    let about: Vec<&str> = [&r.country_code, &r.usage_type, &r.isp]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .filter(|v| !v.is_empty())
        .collect();
    if !about.is_empty() {
        detail.push_str(&format!("; {}", about.join(", ")));
    }
    if r.is_tor == Some(true) {
        detail.push_str("; Tor exit node");
    }
    Some(Finding::new(tag, detail))
}

/// Whether an address is globally routable: private, loopback, link-local,
/// shared (CGNAT), documentation, benchmarking, multicast and reserved
/// ranges are not, and are never sent to the service.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0064 && s[1] == 0xff9b)
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        || (s[0] & 0xe000) != 0x2000)
}

impl Scanner for AbuseIpdbScanner {
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
        let mut line = self.counters.summary();
        let left = self.remaining.load(Ordering::Relaxed);
        if left >= 0 {
            line.push_str(&format!("; {left} requests left today"));
        }
        let limited = self.backoff.until(self.clock.now());
        Box::pin(async move {
            match limited {
                Some(until) => Err(ScanError::scanner(ID, format!("rate-limited until {until}; {line}"))),
                None => Ok(line),
            }
        })
    }
}

#[cfg(test)]
mod tests;
