//! The admin's daily digest at run time: what log watch saw since the last
//! one, mailed to `POSTERN_DIGEST_ADMIN_TO` at `POSTERN_DIGEST_AT`.

use super::{Runtime, RuntimeError};
use crate::digest_mail::admin::compose_admin;
use crate::store::{AuditEntry, LogwatchSummary};

/// The schedule's job name.
pub(super) const ADMIN_JOB: &str = "digest:admin";
/// Attackers listed by name.
const TOP: u32 = 10;

impl Runtime {
    /// What the admin digest would say about the time since `since`
    /// (RFC 3339).
    pub async fn logwatch_summary(&self, since: &str) -> Result<LogwatchSummary, RuntimeError> {
        let since = chrono::DateTime::parse_from_rfc3339(since)
            .map_err(|e| RuntimeError::Invalid(format!("bad time {since:?}: {e}")))?
            .timestamp();
        Ok(self.store.logwatch_summary(since, TOP).await?)
    }

    /// Mails the admin digest for the time since `since`; `Ok(false)` when
    /// no mailer, sender, public URL or admin address is configured. Sent
    /// (and audited) even on a quiet day: silence would look like an outage.
    pub async fn send_admin_digest(&self, since: &str) -> Result<bool, RuntimeError> {
        let bg = self.background.current();
        let d = &bg.settings.digest;
        let (Some(mailer), Some(from), Some(public), Some(to)) = (&bg.mailer, &d.from, &d.public_url, &d.admin_to) else {
            return Ok(false);
        };
        let s = self.logwatch_summary(since).await?;
        let period = format!("since {}", since.get(..16).unwrap_or(since).replace('T', " "));
        let sent = match compose_admin(from, to, public.trim_end_matches('/'), &period, &s) {
            Ok(m) => mailer.send(m).await,
            Err(e) => Err(e),
        };
        let (event, detail) = match &sent {
            Ok(()) => (
                "admin_digest_sent",
                format!(
                    "{} attack(s), {} compromise suspicion(s), {} incident(s) opened; sent to {to}",
                    s.attacks,
                    s.compromises.len(),
                    s.incidents.len()
                ),
            ),
            Err(e) => ("admin_digest_failed", format!("to {to}: {e}")),
        };
        self.store
            .audit(AuditEntry {
                actor: "postern:digest".into(),
                event: event.into(),
                detail: detail.clone(),
                ..Default::default()
            })
            .await?;
        sent.map_err(|_| RuntimeError::Invalid(detail))?;
        self.background.digests_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }
}
