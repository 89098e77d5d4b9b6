//! Backfill progress per folder (issue 22, item 4): how many messages of the
//! backfill window are done, how many remain, and since when it runs.

use super::{Result, Store};
use rusqlite::params;

/// One folder's backfill as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillRow {
    /// Account.
    pub account: String,
    /// Folder.
    pub mailbox: String,
    /// Messages of the window scanned so far.
    pub processed: u64,
    /// Messages the server still listed in the window after the last chunk.
    pub remaining: u64,
    /// When the first chunk was recorded (stored-time string).
    pub started_at: Option<String>,
    /// Last change (stored-time string).
    pub updated_at: String,
}

impl Store {
    /// Adds one chunk of `processed` messages to a folder's backfill, with
    /// what remains after it.
    pub async fn record_backfill_chunk(&self, account: &str, mailbox: &str, processed: u64, remaining: u64) -> Result<()> {
        let (a, m) = (account.to_string(), mailbox.to_string());
        self.call(move |c, ctx| {
            c.execute(
                "UPDATE mailbox_state SET backfill_processed = backfill_processed + ?3, backfill_remaining = ?4,
                        backfill_started_at = COALESCE(backfill_started_at, ?5), updated_at = ?5
                 WHERE account = ?1 AND mailbox = ?2",
                params![a, m, processed as i64, remaining as i64, ctx.now],
            )?;
            Ok(())
        })
        .await
    }

    /// Every folder whose backfill has recorded a chunk, running or finished.
    pub async fn backfill_rows(&self) -> Result<Vec<BackfillRow>> {
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT account, mailbox, backfill_processed, backfill_remaining, backfill_started_at, updated_at
                 FROM mailbox_state WHERE backfill_remaining IS NOT NULL ORDER BY account, mailbox",
            )?;
            let rows = st.query_map([], |r| {
                Ok(BackfillRow {
                    account: r.get(0)?,
                    mailbox: r.get(1)?,
                    processed: r.get::<_, i64>(2)?.max(0) as u64,
                    remaining: r.get::<_, i64>(3)?.max(0) as u64,
                    started_at: r.get(4)?,
                    updated_at: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}
