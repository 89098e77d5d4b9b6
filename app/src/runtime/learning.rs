//! Sends what users taught (issue 17) to the Rspamd controller: the
//! listeners only queue lessons in the store, this task learns them, so a
//! lesson survives a restart or a controller outage and is retried with a
//! growing delay, never sent twice once learned.

use super::{Runtime, RuntimeError};
use crate::scan::learn::{self, Class};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the queue is looked at.
const POLL: Duration = Duration::from_secs(2);
/// Lessons sent per pass.
const BATCH: u32 = 20;
/// Attempts before a lesson is given up (with an audit row).
pub const MAX_ATTEMPTS: u32 = 8;
/// First retry delay; doubled per attempt, capped at [`MAX_RETRY`].
const FIRST_RETRY: chrono::Duration = chrono::Duration::seconds(30);
const MAX_RETRY: chrono::Duration = chrono::Duration::hours(6);

impl Runtime {
    /// Learns every due lesson once. Returns how many were attempted. With
    /// no controller configured nothing is attempted: lessons wait for one.
    pub async fn learn_due(&self) -> Result<usize, RuntimeError> {
        let due = self.store.due_lessons(BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let Some(url) = self.controller_url().await? else {
            tracing::debug!(pending = due.len(), "user feedback waits for an Rspamd controller");
            return Ok(0);
        };
        let pass = self.rspamd_password().await?;
        for l in &due {
            let outcome = match (Class::parse(&l.class), tokio::fs::read(&l.eml_path).await) {
                (None, _) => Err(format!("unknown class {:?}", l.class)),
                (_, Err(e)) => Err(format!("cannot read the stored copy: {e}")),
                (Some(class), Ok(raw)) => learn::teach(Some(&url), pass.as_deref(), raw, class)
                    .await
                    .map_err(|e| e.to_string()),
            };
            match &outcome {
                Ok(d) => tracing::info!(class = %l.class, account = %l.account, outcome = ?d, "user feedback sent to Rspamd"),
                Err(e) => tracing::warn!(class = %l.class, account = %l.account, error = %e, "learning user feedback failed"),
            }
            let retry = (self.clock.now() + retry_delay(l.attempts)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            self.store.finish_lesson(l, outcome, retry, MAX_ATTEMPTS).await?;
        }
        Ok(due.len())
    }

    /// Runs [`Runtime::learn_due`] every few seconds until cancelled.
    pub fn spawn_learning(&self, cancel: CancellationToken) {
        let rt = self.clone();
        tokio::spawn(async move {
            loop {
                match rt.learn_due().await {
                    // A full batch: more may be due (a bootstrap queues
                    // hundreds), so the next one goes at once.
                    Ok(n) if n >= BATCH as usize && !cancel.is_cancelled() => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "learning from user feedback failed"),
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        });
    }
}

/// The wait before the next attempt after `attempts` failed ones.
fn retry_delay(attempts: u32) -> chrono::Duration {
    let factor = 1i32.checked_shl(attempts.min(16)).unwrap_or(i32::MAX);
    FIRST_RETRY.checked_mul(factor).map_or(MAX_RETRY, |d| d.min(MAX_RETRY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_are_capped() {
        assert_eq!(retry_delay(0), chrono::Duration::seconds(30));
        assert_eq!(retry_delay(1), chrono::Duration::seconds(60));
        assert_eq!(retry_delay(40), MAX_RETRY);
    }
}
