//! VirusTotal hash lookups for risky attachments. Only the SHA-256 leaves
//! the host, never the file. The free tier allows 4 requests a minute, so
//! lookups beyond that are skipped rather than queued.

use super::limit::{Backoff, SlidingWindow};
use super::{Counters, RepCache, cache_get_json, cache_put_json, lock, read_capped};
use crate::clock::SharedClock;
use crate::domain::Finding;
use crate::intel::net::SafeClient;
use crate::scan::attach::Attachment;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At least [`MALICIOUS_ENGINES`] engines call it malicious.
pub const TAG_MALICIOUS: &str = "VT_MALICIOUS";
/// One or two engines call it malicious, or [`SUSPICIOUS_ENGINES`] or more suspicious.
pub const TAG_SUSPICIOUS: &str = "VT_SUSPICIOUS";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_MALICIOUS, TAG_SUSPICIOUS];

/// Malicious verdicts that make a file malicious.
pub const MALICIOUS_ENGINES: u32 = 3;
/// Suspicious verdicts that make a file suspicious.
pub const SUSPICIOUS_ENGINES: u32 = 3;
/// Hashes looked up per message.
pub const MAX_HASHES: usize = 4;
/// The free tier's request budget per minute.
pub const FREE_TIER_PER_MINUTE: usize = 4;
/// The public API.
pub const DEFAULT_BASE: &str = "https://www.virustotal.com/api/v3";
/// Default deadline for one message's lookups.
pub const DEFAULT_TIMEOUT: Duration = crate::scan::registry::VIRUSTOTAL.timeout;

const ID: &str = crate::scan::registry::VIRUSTOTAL.id;
const FOUND_TTL: Duration = Duration::from_secs(24 * 3600);
const UNKNOWN_TTL: Duration = Duration::from_secs(3600);
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// What is remembered about one hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Known {
    /// VirusTotal has never seen the file (404).
    Unknown,
    /// The last analysis.
    Found { stats: Stats, label: Option<String> },
}

/// `data.attributes.last_analysis_stats`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Stats {
    #[serde(default)]
    malicious: u32,
    #[serde(default)]
    suspicious: u32,
    #[serde(default)]
    undetected: u32,
    #[serde(default)]
    harmless: u32,
}

#[derive(Deserialize)]
struct Reply {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    attributes: Attributes,
}

#[derive(Deserialize)]
struct Attributes {
    last_analysis_stats: Stats,
    #[serde(default)]
    popular_threat_classification: Option<Classification>,
}

#[derive(Deserialize)]
struct Classification {
    #[serde(default)]
    suggested_threat_label: Option<String>,
}

/// `{"error":{"code":…,"message":…}}`.
#[derive(Deserialize)]
struct ErrorReply {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// One lookup's outcome.
enum Outcome {
    Known(Known),
    /// Not asked: over the request budget or paused by the service.
    Skipped,
}

/// The VirusTotal scanner.
pub struct VirusTotalScanner {
    client: SafeClient,
    base: String,
    key: String,
    cache: Arc<dyn RepCache>,
    clock: SharedClock,
    timeout: Duration,
    window: SlidingWindow,
    backoff: Backoff,
    counters: Counters,
    last_skip: Mutex<Option<DateTime<Utc>>>,
}

impl VirusTotalScanner {
    /// `base` is the API root, e.g. [`DEFAULT_BASE`]. The request budget is
    /// the free tier's until [`Self::with_rate_limit`] says otherwise.
    pub fn new(client: SafeClient, base: &str, key: impl Into<String>, cache: Arc<dyn RepCache>, clock: SharedClock) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            key: key.into(),
            cache,
            clock,
            timeout: DEFAULT_TIMEOUT,
            window: SlidingWindow::new(FREE_TIER_PER_MINUTE, chrono::Duration::minutes(1)),
            backoff: Backoff::default(),
            counters: Counters::default(),
            last_skip: Mutex::new(None),
        }
    }

    /// Requests allowed per `per` (a premium key allows more).
    pub fn with_rate_limit(mut self, max: usize, per: chrono::Duration) -> Self {
        self.window = SlidingWindow::new(max, per);
        self
    }

    /// Deadline for one message's lookups.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn check(&self, input: &ScanInput) -> Result<Vec<Finding>, ScanError> {
        let targets = candidates(&input.attachments);
        let answers = futures::future::join_all(targets.iter().map(|a| self.lookup(&a.sha256))).await;
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        for (a, answer) in targets.iter().zip(answers) {
            match answer {
                Ok(Outcome::Known(Known::Found { stats, label })) => {
                    findings.extend(judge(a, &stats, label.as_deref()));
                }
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            tracing::warn!(scanner = ID, errors = ?errors, "some VirusTotal lookups failed");
            if errors.len() == targets.len() {
                return Err(ScanError::scanner(ID, errors.join("; ")));
            }
        }
        Ok(findings)
    }

    async fn lookup(&self, sha256: &str) -> Result<Outcome, String> {
        let sha256 = &sha256.to_ascii_lowercase();
        if let Some(known) = cache_get_json::<Known>(self.cache.as_ref(), ID, sha256).await {
            Counters::bump(&self.counters.cache_hits);
            return Ok(Outcome::Known(known));
        }
        let now = self.clock.now();
        if let Some(until) = self.backoff.until(now) {
            self.skip(sha256, now, &format!("paused by VirusTotal until {until}"));
            return Ok(Outcome::Skipped);
        }
        if !self.window.try_acquire(now) {
            let why = format!("over {} requests per window", self.window.max());
            self.skip(sha256, now, &why);
            return Ok(Outcome::Skipped);
        }
        Counters::bump(&self.counters.lookups);
        match self.ask(sha256, now).await {
            Ok(k) => {
                let ttl = match k {
                    Known::Unknown => UNKNOWN_TTL,
                    Known::Found { .. } => FOUND_TTL,
                };
                cache_put_json(self.cache.as_ref(), ID, sha256, &k, ttl).await;
                Ok(Outcome::Known(k))
            }
            Err(e) => {
                Counters::bump(&self.counters.errors);
                Err(format!("{sha256}: {e}"))
            }
        }
    }

    fn skip(&self, sha256: &str, now: DateTime<Utc>, why: &str) {
        Counters::bump(&self.counters.skipped);
        *lock(&self.last_skip) = Some(now);
        tracing::info!(scanner = ID, sha256, "lookup skipped: {why}");
    }

    async fn ask(&self, sha256: &str, now: DateTime<Utc>) -> Result<Known, String> {
        // The checked path: a literal-IP base URL must not receive the key.
        let resp = self
            .client
            .get(&format!("{}/files/{sha256}", self.base))
            .map_err(|e| e.to_string())?
            .header("x-apikey", &self.key)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        if status.as_u16() == 429 {
            let until = self.backoff.pause(resp.headers(), now, chrono::Duration::minutes(1));
            tracing::warn!(scanner = ID, %until, "VirusTotal quota exceeded");
            return Err(format!("quota exceeded (HTTP 429), paused until {until}"));
        }
        let body = read_capped(resp, MAX_ANSWER_BYTES).await?;
        if status.as_u16() == 404 {
            return Ok(Known::Unknown);
        }
        if !status.is_success() {
            let why = serde_json::from_slice::<ErrorReply>(&body)
                .map(|e| format!(": {} {}", e.error.code, e.error.message))
                .unwrap_or_default();
            return Err(format!("HTTP {status}{why}"));
        }
        let reply: Reply = serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))?;
        let attrs = reply.data.attributes;
        Ok(Known::Found {
            stats: attrs.last_analysis_stats,
            label: attrs
                .popular_threat_classification
                .and_then(|c| c.suggested_threat_label)
                .filter(|l| !l.is_empty()),
        })
    }
}

/// Risky attachments with a usable hash, first occurrence of each hash,
/// at most [`MAX_HASHES`].
fn candidates(attachments: &[Attachment]) -> Vec<&Attachment> {
    let mut out: Vec<&Attachment> = Vec::new();
    for a in attachments.iter().filter(|a| is_risky(a)) {
        let valid = a.sha256.len() == 64 && a.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if valid && !out.iter().any(|o| o.sha256.eq_ignore_ascii_case(&a.sha256)) {
            out.push(a);
            if out.len() == MAX_HASHES {
                break;
            }
        }
    }
    out
}

fn judge(a: &Attachment, s: &Stats, label: Option<&str>) -> Option<Finding> {
    let tag = if s.malicious >= MALICIOUS_ENGINES {
        TAG_MALICIOUS
    } else if s.malicious >= 1 || s.suspicious >= SUSPICIOUS_ENGINES {
        TAG_SUSPICIOUS
    } else {
        return None;
    };
    let engines = s.malicious + s.suspicious + s.undetected + s.harmless;
    let mut detail = format!(
        "{} sha256={} {}/{engines} engines",
        a.name.as_deref().unwrap_or("(unnamed)"),
        a.sha256.to_ascii_lowercase(),
        s.malicious
    );
    if s.suspicious > 0 {
        detail.push_str(&format!(", {} suspicious", s.suspicious));
    }
    if let Some(l) = label {
        detail.push_str(&format!(" ({l})"));
    }
    Some(Finding::new(tag, detail))
}

impl Scanner for VirusTotalScanner {
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
        let now = self.clock.now();
        let mut line = format!(
            "{}; {}/{} requests in the current window",
            self.counters.summary(),
            self.window.used(now),
            self.window.max()
        );
        if let Some(at) = *lock(&self.last_skip) {
            line.push_str(&format!("; last skipped at {at}"));
        }
        let paused = self.backoff.until(now);
        Box::pin(async move {
            match paused {
                Some(until) => Err(ScanError::scanner(ID, format!("rate-limited until {until}; {line}"))),
                None => Ok(line),
            }
        })
    }
}

mod risky;

pub use risky::is_risky;

#[cfg(test)]
mod tests;
