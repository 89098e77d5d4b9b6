//! Append-only audit log of every automatic and manual action.

use super::{Result, Store};
pub use crate::domain::AuditEntry;
use rusqlite::{Connection, params};

/// A stored audit row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    /// Row id.
    pub id: i64,
    /// Timestamp.
    pub ts: String,
    /// Who.
    pub actor: String,
    /// Account.
    pub account: Option<String>,
    /// Mailbox.
    pub mailbox: Option<String>,
    /// UID.
    pub uid: Option<u32>,
    /// Message row id.
    pub message: Option<i64>,
    /// Event name.
    pub event: String,
    /// Detail.
    pub detail: String,
}

/// Maps `id, ts, actor, account, mailbox, uid, message, event, detail`.
pub(super) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        ts: r.get(1)?,
        actor: r.get(2)?,
        account: r.get(3)?,
        mailbox: r.get(4)?,
        uid: r.get(5)?,
        message: r.get(6)?,
        event: r.get(7)?,
        detail: r.get(8)?,
    })
}

pub(super) fn insert(c: &Connection, now: &str, e: &AuditEntry) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (ts, actor, account, mailbox, uidvalidity, uid, message, event, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            now,
            e.actor,
            e.account,
            e.mailbox,
            e.uidvalidity,
            e.uid,
            e.message,
            e.event,
            e.detail
        ],
    )?;
    Ok(())
}

impl Store {
    /// Appends one audit row.
    pub async fn audit(&self, e: AuditEntry) -> Result<()> {
        self.call(move |c, ctx| Ok(insert(c, &ctx.now, &e)?)).await
    }

    /// How many `event` rows a mailbox got at or after `since` (RFC 3339,
    /// the store's own format), e.g. to bound a server's UIDVALIDITY churn.
    pub async fn mailbox_events_since(&self, account: &str, mailbox: &str, event: &str, since: &str) -> Result<u32> {
        let (a, m, e, t) = (account.to_string(), mailbox.to_string(), event.to_string(), since.to_string());
        self.call(move |c, _| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit WHERE account = ?1 AND mailbox = ?2 AND event = ?3 AND ts >= ?4",
                params![a, m, e, t],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Audit rows, newest first, optionally for one account and/or event.
    pub async fn audit_rows(&self, account: Option<&str>, event: Option<&str>, limit: u32) -> Result<Vec<AuditRow>> {
        let (a, e) = (account.map(str::to_string), event.map(str::to_string));
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT id, ts, actor, account, mailbox, uid, message, event, detail FROM audit
                 WHERE (?1 IS NULL OR account = ?1) AND (?2 IS NULL OR event = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st.query_map(params![a, e, limit], row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}
