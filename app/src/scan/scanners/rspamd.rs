//! Rspamd over HTTP: `POST /checkv2` with the envelope as headers. Rspamd's
//! action becomes a tag; its score and strongest symbols are the detail.

use crate::domain::Finding;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::time::Duration;

/// Rspamd says reject.
pub const TAG_REJECT: &str = "RSPAMD_REJECT";
/// Rspamd says add header / rewrite subject.
pub const TAG_SPAM: &str = "RSPAMD_SPAM";
/// Rspamd says greylist / soft reject.
pub const TAG_SUSPICIOUS: &str = "RSPAMD_SUSPICIOUS";
/// Rspamd's score, action and symbols, for every message (informational).
pub const TAG_RESULT: &str = "RSPAMD_RESULT";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_RESULT, TAG_REJECT, TAG_SPAM, TAG_SUSPICIOUS];

/// Rspamd client.
#[derive(Debug, Clone)]
pub struct RspamdScanner {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
    mode: FailureMode,
}

#[derive(serde::Deserialize)]
struct Reply {
    action: String,
    score: f64,
    #[serde(default)]
    required_score: f64,
    #[serde(default)]
    symbols: BTreeMap<String, Symbol>,
}

#[derive(serde::Deserialize)]
struct Symbol {
    #[serde(default)]
    score: f64,
}

impl RspamdScanner {
    /// `url` is the normal worker's base, e.g. `http://127.0.0.1:11333`.
    pub fn new(url: &str, timeout: Duration, mode: FailureMode) -> Result<Self, ScanError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| ScanError::scanner("rspamd", e))?;
        Ok(Self {
            client,
            url: url.trim_end_matches('/').to_string(),
            timeout,
            mode,
        })
    }

    async fn check(&self, input: &ScanInput) -> Result<Vec<Finding>, ScanError> {
        let mut req = self
            .client
            .post(format!("{}/checkv2", self.url))
            .header("Pass", "all")
            .body(input.raw.as_ref().clone());
        if let Some(ip) = input.sender_ip {
            req = req.header("IP", ip.to_string());
        }
        if let Some(helo) = &input.helo {
            req = req.header("Helo", helo.chars().filter(|c| c.is_ascii_graphic()).take(255).collect::<String>());
        }
        if let Some(from) = &input.from_addr {
            req = req.header("From", from);
        }
        for r in input.rcpt.iter().take(50) {
            req = req.header("Rcpt", r);
        }
        if let Some(id) = &input.message_id {
            req = req.header(
                "Queue-Id",
                id.chars().filter(|c| c.is_ascii_graphic()).take(100).collect::<String>(),
            );
        }
        let resp = req.send().await.map_err(|e| ScanError::scanner("rspamd", e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ScanError::scanner("rspamd", format!("HTTP {status}")));
        }
        let reply: Reply = resp
            .json()
            .await
            .map_err(|e| ScanError::scanner("rspamd", format!("bad reply: {e}")))?;
        let mut syms: Vec<(&String, f64)> = reply.symbols.iter().map(|(k, v)| (k, v.score)).collect();
        syms.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = syms.iter().take(8).map(|(k, s)| format!("{k}({s:.1})")).collect();
        let detail = format!(
            "action {}, score {:.2}/{:.2}: {}",
            reply.action,
            reply.score,
            reply.required_score,
            top.join(" ")
        );
        let tag = match reply.action.as_str() {
            "reject" => Some(TAG_REJECT),
            "add header" | "rewrite subject" => Some(TAG_SPAM),
            "greylist" | "soft reject" => Some(TAG_SUSPICIOUS),
            _ => None,
        };
        // The raw result is always kept (score 0 in the policy), so the
        // dashboard and `scan --explain` show Rspamd's view of clean mail too.
        let mut out = vec![Finding::new(TAG_RESULT, detail.clone())];
        if let Some(t) = tag {
            out.push(Finding::new(t, detail));
        }
        Ok(out)
    }
}

impl Scanner for RspamdScanner {
    fn id(&self) -> &'static str {
        "rspamd"
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        self.mode
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(self.check(input))
    }
    fn health(&self) -> BoxFuture<'_, Result<String, ScanError>> {
        Box::pin(async move {
            let r = self
                .client
                .get(format!("{}/ping", self.url))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| ScanError::scanner("rspamd", e))?;
            if !r.status().is_success() {
                return Err(ScanError::scanner("rspamd", format!("/ping answered HTTP {}", r.status())));
            }
            Ok(format!("{} answers /ping", self.url))
        })
    }
}
