//! Reported phishing at run time (issue 17, item 3). The report-folder
//! listeners only record reports; this task tells the operator about each
//! new one and confirms it without them above
//! `POSTERN_REPORT_AUTO_CONFIRM_SCORE`. Confirming turns the message's
//! sender, URLs and attachment hashes into IOCs (source `report`, with an
//! expiry), which claws the same mail back everywhere through the existing
//! claw-back, re-checks the rest of its campaign, and queues a spam lesson
//! (learned once, like the Junk folder's). Rejecting returns the message to
//! the reporter's INBOX and learns nothing. Every step is an audit row.

use super::{Runtime, RuntimeError};
use crate::domain::NewIndicator;
use crate::notify::{Notice, NoticeKind};
use crate::store::ReportRow;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often new reports are looked for.
const POLL: Duration = Duration::from_secs(2);
/// IOC kinds a confirmed report turns into indicators: the sender (and
/// Reply-To), every URL and every attachment. Domains and IPs are left
/// out: a phish sent through a big provider must not block the provider.
const IOC_KINDS: &[&str] = &["email", "url", "sha256"];
/// Indicators one report may create at most (a message with hundreds of
/// links is bounded like its observables).
const MAX_IOCS: usize = 100;
/// Confidence of an indicator a person (or the auto-confirm score)
/// vouched for.
const REPORT_CONFIDENCE: u8 = 90;
/// The actor of an automatic confirmation.
pub const AUTO_ACTOR: &str = "postern:auto-confirm";

/// What confirming or rejecting a report did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportOutcome {
    /// The report.
    pub report: i64,
    /// confirmed | rejected.
    pub state: &'static str,
    /// What happened, step by step.
    pub steps: Vec<String>,
}

impl Runtime {
    /// Reports, newest first (one state, or all).
    pub async fn report_queue(&self, state: Option<&str>, limit: u32) -> Result<Vec<ReportRow>, RuntimeError> {
        Ok(self.store.reports(state, limit).await?)
    }

    async fn report_or_invalid(&self, id: i64) -> Result<ReportRow, RuntimeError> {
        self.store
            .report(id)
            .await?
            .ok_or_else(|| RuntimeError::Invalid(format!("no report #{id}")))
    }

    /// Tells the operator about every new report, then confirms those whose
    /// re-scan reaches the auto-confirm score. Returns how many were seen.
    pub async fn reports_tick(&self) -> Result<usize, RuntimeError> {
        let fresh = self.store.reports(Some("new"), 50).await?;
        for r in &fresh {
            let told = match &self.background.notifier() {
                Some(n) => {
                    let mut notice = Notice::plain(
                        NoticeKind::UserReport,
                        format!("{} reported a message as phishing", r.reporter),
                        format!(
                            "Report #{}: from {} — {} (re-scan: {}, score {:.1}). Confirm or reject it on the Reports page.",
                            r.id,
                            r.from_addr.as_deref().unwrap_or("(no sender)"),
                            r.subject.as_deref().unwrap_or("(no subject)"),
                            r.verdict,
                            r.score
                        ),
                    );
                    notice.account = Some(r.account.clone());
                    notice.score = Some(r.score);
                    notice.from.clone_from(&r.from_addr);
                    notice.subject.clone_from(&r.subject);
                    // One alert per report: the key never repeats.
                    n.alert(&format!("report:{}", r.id), notice).await;
                    "the operator was notified"
                }
                None => "no notification channel is configured; the report waits on the Reports page",
            };
            self.store
                .advance_report(r.id, &["new"], "open", "postern", "report_queued", told.to_string())
                .await?;
            if let Some(min) = self.settings.intel.report_auto_confirm
                && r.score >= min
                && let Err(e) = self.confirm_report(r.id, AUTO_ACTOR).await
            {
                tracing::warn!(report = r.id, error = %e, "automatic confirmation failed");
            }
        }
        Ok(fresh.len())
    }

    /// Runs [`Runtime::reports_tick`] every few seconds until cancelled.
    pub fn spawn_reports(&self, cancel: CancellationToken) {
        let rt = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = rt.reports_tick().await {
                    tracing::warn!(error = %e, "the report queue failed");
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        });
    }

    /// Confirms a report: IOCs (which claw the same mail back everywhere),
    /// a re-check of its whole campaign, and a spam lesson. A report that
    /// was decided already is refused.
    pub async fn confirm_report(&self, id: i64, actor: &str) -> Result<ReportOutcome, RuntimeError> {
        let r = self.report_or_invalid(id).await?;
        let how = if actor == AUTO_ACTOR {
            format!(
                "confirmed automatically: the re-scan scored {:.1}, at least POSTERN_REPORT_AUTO_CONFIRM_SCORE",
                r.score
            )
        } else {
            "confirmed as phishing".to_string()
        };
        if !self
            .store
            .advance_report(id, &["new", "open"], "confirmed", actor, "report_confirmed", how.clone())
            .await?
        {
            return Err(RuntimeError::Invalid(format!("report #{id} was already decided")));
        }
        let mut steps = vec![how];

        let items = self.report_indicators(&r, actor).await?;
        let (ids, queued) = if items.is_empty() {
            (Vec::new(), 0)
        } else {
            self.add_indicators(items, actor).await?
        };
        let step = format!(
            "{} IOC(s) with source report{}; the claw-back queued {queued} re-check(s) of mail that matches them",
            ids.len(),
            if ids.is_empty() {
                String::new()
            } else {
                format!(
                    " (#{}, expiring in {} days)",
                    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", #"),
                    self.settings.intel.report_ioc_days
                )
            }
        );
        self.store.audit_report(&r, actor, "report_iocs", step.clone()).await?;
        steps.push(step);

        let members = self.report_campaign(&r).await?;
        let reason = format!("campaign of confirmed report #{id}");
        let items: Vec<(i64, String)> = members.iter().map(|m| (*m, reason.clone())).collect();
        let rechecked = self.request_rechecks(items, &reason).await?;
        let step = format!(
            "its campaign has {} delivered message(s); {rechecked} more re-check(s) queued (the rest were queued, quarantined or not actionable)",
            members.len()
        );
        self.store.audit_report(&r, actor, "report_clawback", step.clone()).await?;
        steps.push(step);

        let step = if self.store.queue_spam_lesson(&r.sha256, &r.eml_path, &r.account).await? {
            "queued as spam for Rspamd's classifier".to_string()
        } else {
            "already learned or queued as spam; not learned twice".to_string()
        };
        self.store.audit_report(&r, actor, "report_learn", step.clone()).await?;
        steps.push(step);
        Ok(ReportOutcome {
            report: id,
            state: "confirmed",
            steps,
        })
    }

    /// Rejects a report: the message goes back to the reporter's INBOX and
    /// nothing is learned. If it cannot be moved back the report stays open
    /// and the failure is in the audit log.
    pub async fn reject_report(&self, id: i64, actor: &str) -> Result<ReportOutcome, RuntimeError> {
        let r = self.report_or_invalid(id).await?;
        if !matches!(r.state.as_str(), "new" | "open") {
            return Err(RuntimeError::Invalid(format!("report #{id} was already decided")));
        }
        if self.shadow_accounts().await?.contains(&r.account) {
            return Err(RuntimeError::Invalid(format!(
                "account {} is in shadow mode: Postern never moves its mail, so the message stays in {}",
                r.account, r.mailbox
            )));
        }
        let moved = match self.manager.return_report(&r.key(), &r.sha256, r.message_id.as_deref()).await {
            Ok(d) => d,
            Err(e) => {
                self.store.audit_report(&r, actor, "report_return_failed", e.clone()).await?;
                return Err(RuntimeError::Invalid(format!("report #{id} could not be returned: {e}")));
            }
        };
        let detail = format!("rejected: not phishing; {moved}; nothing learned");
        if !self
            .store
            .advance_report(id, &["new", "open"], "rejected", actor, "report_rejected", detail.clone())
            .await?
        {
            return Err(RuntimeError::Invalid(format!("report #{id} was already decided")));
        }
        Ok(ReportOutcome {
            report: id,
            state: "rejected",
            steps: vec![detail],
        })
    }

    /// The indicators a confirmed report creates. The watched accounts'
    /// own addresses never become one: a user who forwards the phish
    /// instead of moving it is its From.
    async fn report_indicators(&self, r: &ReportRow, actor: &str) -> Result<Vec<NewIndicator>, RuntimeError> {
        let own: Vec<String> = self
            .store
            .accounts()
            .await?
            .into_iter()
            .flat_map(|a| [Some(a.user), a.digest_to])
            .flatten()
            .map(|u| u.to_ascii_lowercase())
            .collect();
        let expires = self.clock.now() + chrono::Duration::days(self.settings.intel.report_ioc_days.into());
        let expires_at = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let observables = r.decision.as_ref().map(|d| d.observables.as_slice()).unwrap_or_default();
        Ok(observables
            .iter()
            .filter(|o| IOC_KINDS.contains(&o.kind.as_str()))
            .filter(|o| !(o.kind == "email" && own.contains(&o.value)))
            .take(MAX_IOCS)
            .map(|o| NewIndicator {
                kind: o.kind.clone(),
                value: o.value.clone(),
                source: "report".into(),
                confidence: REPORT_CONFIDENCE,
                severity: "high".into(),
                expires_at: Some(expires_at.clone()),
                false_positive: false,
                note: Some(format!("report #{} by {}, confirmed by {actor}", r.id, r.reporter)),
            })
            .collect())
    }
}
