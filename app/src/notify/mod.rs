//! Notifications: ntfy and a generic JSON webhook, both sent through the
//! SSRF-safe client. Verdict notices are filtered per channel; alerts
//! (scanner unhealthy, claw-back) are rate-limited per kind, so a flapping
//! scanner cannot flood a phone.

mod ntfy;
mod webhook;

pub use webhook::signature;

use crate::clock::SharedClock;
use crate::config::NotifySettings;
use crate::domain::Verdict;
use crate::intel::net::SafeClient;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// Notification failures (logged; never stop scanning).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The request was refused by the outbound policy or failed on the wire.
    #[error(transparent)]
    Net(#[from] crate::intel::IntelError),
    /// The receiver answered with an error status.
    #[error("{channel} answered HTTP {status}")]
    Status {
        /// ntfy or webhook.
        channel: &'static str,
        /// HTTP status.
        status: u16,
    },
    /// The configured URL is unusable.
    #[error("bad {channel} URL: {detail}")]
    Url {
        /// ntfy or webhook.
        channel: &'static str,
        /// Why.
        detail: String,
    },
}

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A message got a verdict.
    Verdict,
    /// A scanner is unhealthy.
    ScannerUnhealthy,
    /// Delivered mail was pulled back into quarantine.
    Clawback,
    /// The maintenance run found a problem.
    Maintenance,
    /// An account's folder is stuck or its server is broken.
    AccountError,
    /// Log watch saw a login succeed after failures: a password may be known.
    CompromiseSuspicion,
    /// A user reported a message as phishing (issue 17).
    UserReport,
}

/// One notification, before masking.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Notice {
    /// What it is about.
    pub kind: NoticeKind,
    /// Short headline.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Account concerned.
    pub account: Option<String>,
    /// Verdict, for message notices.
    pub verdict: Option<Verdict>,
    /// Policy score.
    pub score: Option<f64>,
    /// Tags, comma-separated.
    pub tags: Option<String>,
    /// Sender (masked when asked).
    pub from: Option<String>,
    /// Subject (masked when asked).
    pub subject: Option<String>,
    /// Message row id.
    pub message_id: Option<i64>,
}

impl Notice {
    /// A notice about a stored message.
    pub fn about_message(kind: NoticeKind, m: &crate::store::MessageSummary, title: String) -> Notice {
        let verdict = m.verdict.as_deref().and_then(Verdict::parse);
        let message = format!(
            "{} → {} (score {:.1}) in {}: from {} — {}",
            m.account,
            m.verdict.as_deref().unwrap_or("?"),
            m.score.unwrap_or(0.0),
            m.mailbox,
            m.from.as_deref().unwrap_or("(no sender)"),
            m.subject.as_deref().unwrap_or("(no subject)")
        );
        Notice {
            kind,
            title,
            message,
            account: Some(m.account.clone()),
            verdict,
            score: m.score,
            tags: m.tags.clone(),
            from: m.from.clone(),
            subject: m.subject.clone(),
            message_id: Some(m.id),
        }
    }

    /// A notice with no message behind it.
    pub fn plain(kind: NoticeKind, title: String, message: String) -> Notice {
        Notice {
            kind,
            title,
            message,
            account: None,
            verdict: None,
            score: None,
            tags: None,
            from: None,
            subject: None,
            message_id: None,
        }
    }

    /// The same notice with sender and subject hidden everywhere they appear.
    pub fn masked(mut self) -> Notice {
        for (field, mask) in [
            (&self.from, mask_address(self.from.as_deref())),
            (&self.subject, Some("(hidden)".into())),
        ] {
            if let Some(v) = field.as_deref().filter(|v| !v.is_empty())
                && let Some(m) = &mask
            {
                self.message = self.message.replace(v, m);
                self.title = self.title.replace(v, m);
            }
        }
        self.from = mask_address(self.from.as_deref());
        self.subject = self.subject.map(|_| "(hidden)".into());
        self
    }
}

/// `someone@example.org` → `***@example.org`: the domain is what an
/// operator needs to triage, the person is not.
fn mask_address(a: Option<&str>) -> Option<String> {
    a.map(|a| match a.rsplit_once('@') {
        Some((_, domain)) => format!("***@{}", domain.trim_end_matches('>')),
        None => "***".into(),
    })
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct NotifyCounters {
    /// Sent, by channel.
    pub sent: [std::sync::atomic::AtomicU64; 2],
    /// Failed, by channel.
    pub failed: [std::sync::atomic::AtomicU64; 2],
    /// Alerts held back by the rate limit.
    pub suppressed: std::sync::atomic::AtomicU64,
}

/// Sends notices to the configured channels.
#[derive(Debug)]
pub struct Notifier {
    settings: NotifySettings,
    client: SafeClient,
    clock: SharedClock,
    last_alert: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Outcomes, for `/metrics`.
    pub counters: NotifyCounters,
}

impl Notifier {
    /// A notifier, or `None` when no channel is configured.
    pub fn new(settings: &NotifySettings, client: SafeClient, clock: SharedClock) -> Option<Notifier> {
        (settings.ntfy_url.is_some() || settings.webhook_url.is_some()).then(|| Notifier {
            settings: settings.clone(),
            client,
            clock,
            last_alert: Mutex::new(HashMap::new()),
            counters: NotifyCounters::default(),
        })
    }

    /// Sends a verdict notice to every channel that wants this verdict.
    pub async fn verdict(&self, n: Notice) {
        let Some(v) = n.verdict else { return };
        let to_ntfy = self.settings.ntfy_verdicts.contains(&v);
        let to_hook = self.settings.webhook_verdicts.contains(&v);
        self.send(n, to_ntfy, to_hook).await;
    }

    /// Sends an alert unless one with the same `key` went out within
    /// `POSTERN_NOTIFY_ALERT_MINS`. Returns whether it was sent.
    pub async fn alert(&self, key: &str, n: Notice) -> bool {
        let now = self.clock.now();
        let gap = chrono::Duration::minutes(i64::from(self.settings.alert_gap_mins));
        let allowed = match self.last_alert.lock() {
            Ok(mut m) => {
                let ok = m.get(key).is_none_or(|t| now - *t >= gap);
                if ok {
                    m.insert(key.to_string(), now);
                }
                ok
            }
            Err(_) => true,
        };
        if !allowed {
            self.counters.suppressed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(key, "alert suppressed by the rate limit");
            return false;
        }
        self.send(n, true, true).await;
        true
    }

    async fn send(&self, n: Notice, to_ntfy: bool, to_hook: bool) {
        let n = if self.settings.mask { n.masked() } else { n };
        let now = self.clock.now();
        if to_ntfy && let Some(url) = &self.settings.ntfy_url {
            let r = ntfy::send(&self.client, url, self.settings.ntfy_token.as_deref(), &n).await;
            self.tally(0, "ntfy", r);
        }
        if to_hook && let Some(url) = &self.settings.webhook_url {
            let r = webhook::send(&self.client, url, self.settings.webhook_secret.as_deref(), &n, now).await;
            self.tally(1, "webhook", r);
        }
    }

    fn tally(&self, i: usize, channel: &str, r: Result<(), NotifyError>) {
        use std::sync::atomic::Ordering::Relaxed;
        match r {
            Ok(()) => {
                self.counters.sent[i].fetch_add(1, Relaxed);
            }
            Err(e) => {
                self.counters.failed[i].fetch_add(1, Relaxed);
                tracing::warn!(channel, error = %e, "notification failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
