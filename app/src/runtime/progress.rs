//! Backfill progress an operator can see (issue 22, item 4): per folder,
//! done/total and a rate, for the dashboard, `/health` and `/metrics`.

use super::{Runtime, RuntimeError};

/// One folder's backfill.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BackfillProgress {
    /// Account.
    pub account: String,
    /// Folder.
    pub mailbox: String,
    /// Messages of the window scanned.
    pub done: u64,
    /// Messages in the window (done plus what the server still lists).
    pub total: u64,
    /// Messages per minute since the first chunk (0 before a minute's data).
    pub per_minute: f64,
    /// Nothing remains.
    pub finished: bool,
}

impl Runtime {
    /// Every folder's backfill, running or finished.
    pub async fn backfill_progress(&self) -> Result<Vec<BackfillProgress>, RuntimeError> {
        let rows = self.store.backfill_rows().await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let started = r.started_at.as_deref().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
                let last = chrono::DateTime::parse_from_rfc3339(&r.updated_at).ok();
                // The rate runs from the first chunk to the last one, so a
                // finished backfill keeps the rate it had.
                let secs = started.zip(last).map_or(0, |(s, l)| (l - s).num_seconds());
                let per_minute = if secs > 0 { r.processed as f64 * 60.0 / secs as f64 } else { 0.0 };
                BackfillProgress {
                    account: r.account,
                    mailbox: r.mailbox,
                    done: r.processed,
                    total: r.processed + r.remaining,
                    per_minute: (per_minute * 10.0).round() / 10.0,
                    finished: r.remaining == 0,
                }
            })
            .collect())
    }
}
