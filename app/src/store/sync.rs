//! Per-mailbox sync cursor: (account, mailbox) → UIDVALIDITY, last UID with a
//! recorded decision, HIGHESTMODSEQ and the backfill cursor.

use super::{Result, Store};
use crate::domain::MessageKey;
use rusqlite::{OptionalExtension, params};

/// The stored cursor of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxState {
    /// UIDVALIDITY the cursor belongs to.
    pub uidvalidity: u32,
    /// Every UID ≤ this has a decision recorded.
    pub last_uid: u32,
    /// Last HIGHESTMODSEQ seen, when the server supports CONDSTORE.
    pub highest_modseq: Option<u64>,
    /// When Postern first watched this mailbox (RFC 3339).
    pub watch_since: String,
    /// Backfill window start (RFC 3501 date, e.g. `1-Nov-2026`).
    pub backfill_since: Option<String>,
    /// Backfill covers UIDs ≤ this.
    pub backfill_until_uid: Option<u32>,
    /// Backfill has handled every UID ≤ this.
    pub backfill_done_uid: Option<u32>,
}

impl Store {
    /// The cursor for a mailbox, if it was ever seen.
    pub async fn mailbox_state(&self, account: &str, mailbox: &str) -> Result<Option<MailboxState>> {
        let (a, m) = (account.to_string(), mailbox.to_string());
        self.call(move |c, _| {
            Ok(c.query_row(
                "SELECT uidvalidity, last_uid, highest_modseq, watch_since, backfill_since, backfill_until_uid, backfill_done_uid
                 FROM mailbox_state WHERE account = ?1 AND mailbox = ?2",
                params![a, m],
                |r| {
                    Ok(MailboxState {
                        uidvalidity: r.get(0)?,
                        last_uid: r.get(1)?,
                        highest_modseq: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                        watch_since: r.get(3)?,
                        backfill_since: r.get(4)?,
                        backfill_until_uid: r.get(5)?,
                        backfill_done_uid: r.get(6)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    /// Records the first sight of a mailbox.
    pub async fn init_mailbox_state(&self, account: &str, mailbox: &str, st: &MailboxState) -> Result<()> {
        let (a, m, st) = (account.to_string(), mailbox.to_string(), st.clone());
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO mailbox_state (account, mailbox, uidvalidity, last_uid, highest_modseq, watch_since,
                   backfill_since, backfill_until_uid, backfill_done_uid, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    a,
                    m,
                    st.uidvalidity,
                    st.last_uid,
                    st.highest_modseq.map(|v| v as i64),
                    st.watch_since,
                    st.backfill_since,
                    st.backfill_until_uid,
                    st.backfill_done_uid,
                    ctx.now
                ],
            )?;
            super::audit::insert(
                &tx,
                &ctx.now,
                &super::AuditEntry::mailbox(
                    &a,
                    &m,
                    "mailbox_first_seen",
                    format!(
                        "UIDVALIDITY {}, starting after UID {}{}",
                        st.uidvalidity,
                        st.last_uid,
                        st.backfill_since
                            .as_ref()
                            .map(|s| format!(", backfill since {s}"))
                            .unwrap_or_default()
                    ),
                ),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The server changed UIDVALIDITY: every cached UID is void. Pending
    /// intents of the old generation become `stale` (never executed), and the
    /// cursor restarts at 0 so the mailbox is re-synced.
    pub async fn reset_uidvalidity(&self, account: &str, mailbox: &str, old: u32, new: u32) -> Result<usize> {
        let (a, m) = (account.to_string(), mailbox.to_string());
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let stale = tx.execute(
                "UPDATE intents SET state = 'stale', updated_at = ?4, last_error = 'UIDVALIDITY changed before the action ran'
                 WHERE state = 'pending' AND message IN
                   (SELECT id FROM messages WHERE account = ?1 AND mailbox = ?2 AND uidvalidity = ?3)",
                params![a, m, old, ctx.now],
            )?;
            tx.execute(
                "UPDATE messages SET status = 'stale', updated_at = ?4
                 WHERE account = ?1 AND mailbox = ?2 AND uidvalidity = ?3 AND status = 'decided'",
                params![a, m, old, ctx.now],
            )?;
            tx.execute(
                "UPDATE mailbox_state SET uidvalidity = ?3, last_uid = 0, highest_modseq = NULL,
                   backfill_since = NULL, backfill_until_uid = NULL, backfill_done_uid = NULL, updated_at = ?4
                 WHERE account = ?1 AND mailbox = ?2",
                params![a, m, new, ctx.now],
            )?;
            super::audit::insert(
                &tx,
                &ctx.now,
                &super::AuditEntry::mailbox(
                    &a,
                    &m,
                    "uidvalidity_changed",
                    format!("UIDVALIDITY {old} -> {new}; {stale} pending action(s) voided; re-syncing"),
                ),
            )?;
            tx.commit()?;
            Ok(stale)
        })
        .await
    }

    /// Advances the cursor (never backwards) and stores HIGHESTMODSEQ.
    pub async fn advance_cursor(&self, account: &str, mailbox: &str, uidvalidity: u32, last_uid: u32, modseq: Option<u64>) -> Result<()> {
        let key = MessageKey {
            account: account.to_string(),
            mailbox: mailbox.to_string(),
            uidvalidity,
            uid: last_uid,
        };
        self.call(move |c, ctx| Ok(advance(c, &ctx.now, &key, modseq)?)).await
    }

    /// Records backfill progress.
    pub async fn set_backfill_done(&self, account: &str, mailbox: &str, uidvalidity: u32, done_uid: u32) -> Result<()> {
        let (a, m) = (account.to_string(), mailbox.to_string());
        self.call(move |c, ctx| {
            c.execute(
                "UPDATE mailbox_state SET backfill_done_uid = MAX(COALESCE(backfill_done_uid, 0), ?4), updated_at = ?5
                 WHERE account = ?1 AND mailbox = ?2 AND uidvalidity = ?3",
                params![a, m, uidvalidity, done_uid, ctx.now],
            )?;
            Ok(())
        })
        .await
    }
}

/// The one statement that moves a cursor: never backwards, and only within
/// the UIDVALIDITY generation the UID belongs to.
pub(super) fn advance(c: &rusqlite::Connection, now: &str, k: &MessageKey, modseq: Option<u64>) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE mailbox_state SET last_uid = MAX(last_uid, ?4),
           highest_modseq = COALESCE(?5, highest_modseq), updated_at = ?6
         WHERE account = ?1 AND mailbox = ?2 AND uidvalidity = ?3",
        params![k.account, k.mailbox, k.uidvalidity, k.uid, modseq.map(|v| v as i64), now],
    )?;
    Ok(())
}
