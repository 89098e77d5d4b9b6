//! Messages and their durable intents.
//!
//! The decision, the intent and the cursor advance are written in one
//! transaction; the intent is executed afterwards and closed in a second
//! transaction together with its audit row. A crash between the two leaves a
//! `pending` intent that is resumed (idempotently) on the next start.

use super::audit;
use super::sync::advance;
use super::{Result, Store, StoreError};
use crate::domain::{Action, Decision, MessageKey, Verdict};
use crate::domain::{AuditEntry, Intent};
use rusqlite::{OptionalExtension, params};

/// Facts about a fetched message.
#[derive(Debug, Clone, Default)]
pub struct MessageMeta {
    /// Message-ID header without angle brackets.
    pub message_id: Option<String>,
    /// SHA-256 of the raw bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// From address.
    pub from: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Server INTERNALDATE (RFC 3339) when known.
    pub internal_date: Option<String>,
}

/// A message about to be recorded.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Where it was seen.
    pub key: MessageKey,
    /// What it is.
    pub meta: MessageMeta,
}

/// What [`Store::record_decision_owned`] wrote, with the decision handed back.
#[derive(Debug)]
pub struct Recorded {
    /// The message row.
    pub id: i64,
    /// The pending intent, if an action was planned.
    pub intent: Option<i64>,
    /// The decision that was recorded, moved back to the caller.
    pub decision: Decision,
}

/// Processing state of a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    /// Decision recorded; an intent may be pending.
    Decided,
    /// Fully processed.
    Done,
    /// Recognised after a UIDVALIDITY change as mail already handled.
    Known,
    /// Its UIDVALIDITY generation ended before the action ran.
    Stale,
    /// Its action failed every attempt allowed and waits for the operator.
    Failed,
}

impl MessageStatus {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "decided" => Self::Decided,
            "done" => Self::Done,
            "known" => Self::Known,
            "stale" => Self::Stale,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// How an intent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentState {
    /// Not yet executed.
    Pending,
    /// Executed (or found already executed).
    Done,
    /// The message was no longer there (the user moved or deleted it).
    Gone,
    /// Voided by a UIDVALIDITY change.
    Stale,
    /// The server lacks what the action needs (no MOVE and no UIDPLUS).
    Refused,
    /// The UID holds other content than the message decided on (the server
    /// handed over a wrong body): nothing touched, left for the operator.
    Mismatch,
}

impl IntentState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Gone => "gone",
            Self::Stale => "stale",
            Self::Refused => "refused",
            Self::Mismatch => "mismatch",
        }
    }
}

/// A stored message (for inspection and tests).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MessageRow {
    /// Row id.
    pub id: i64,
    /// Mailbox it was seen in.
    pub mailbox: String,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UID.
    pub uid: u32,
    /// Message-ID.
    pub message_id: Option<String>,
    /// SHA-256.
    pub sha256: String,
    /// decided | done | known | stale.
    pub status: String,
    /// Verdict name.
    pub verdict: Option<String>,
    /// Whether no action was allowed.
    pub observe_only: bool,
    /// Stored EML copy.
    pub eml_path: Option<String>,
    /// Where the message is now, if Postern moved it.
    pub location_mailbox: Option<String>,
    /// Its UID there (from COPYUID).
    pub location_uid: Option<u32>,
    /// Policy score.
    pub score: Option<f64>,
    /// Tags, comma-separated.
    pub tags: Option<String>,
    /// Scanner reports (JSON array of `domain::ScannerReport`).
    pub scan_json: Option<String>,
}

impl Store {
    /// Which of `uids` (one folder generation) have a row: one query for a
    /// whole chunk instead of a status read per message (issue 21).
    pub async fn recorded_uids(&self, account: &str, mailbox: &str, uidvalidity: u32, uids: &[u32]) -> Result<Vec<u32>> {
        let (Some(&lo), Some(&hi)) = (uids.iter().min(), uids.iter().max()) else {
            return Ok(Vec::new());
        };
        let (a, m, want) = (account.to_string(), mailbox.to_string(), uids.to_vec());
        self.call(move |c, _| {
            let mut st =
                c.prepare_cached("SELECT uid FROM messages WHERE account=?1 AND mailbox=?2 AND uidvalidity=?3 AND uid BETWEEN ?4 AND ?5")?;
            let rows = st.query_map(params![a, m, uidvalidity, lo, hi], |r| r.get::<_, u32>(0))?;
            let mut out = Vec::new();
            for uid in rows {
                let uid = uid?;
                if want.contains(&uid) {
                    out.push(uid);
                }
            }
            out.sort_unstable();
            out.dedup();
            Ok(out)
        })
        .await
    }

    /// The stored status of a message copy, if any.
    pub async fn message_status(&self, key: &MessageKey) -> Result<Option<(i64, MessageStatus)>> {
        let key = key.clone();
        self.call(move |c, _| status_in(c, &key)).await
    }

    /// Records a message recognised as already handled, and advances the cursor.
    pub async fn record_known(&self, m: &NewMessage, earlier: i64) -> Result<i64> {
        let detail = format!("same message as record #{earlier} from an earlier UIDVALIDITY; no action");
        self.record_known_as(m, "recognised", detail).await
    }

    /// Records a message that needs no scan (already handled, or released by
    /// the operator), with `event` in the audit log, and advances the cursor.
    pub async fn record_known_as(&self, m: &NewMessage, event: &str, detail: String) -> Result<i64> {
        let (m, event) = (m.clone(), event.to_string());
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let id = insert_message(&tx, &ctx.now, &m, "known", None, false, None)?;
            advance(&tx, &ctx.now, &m.key, None)?;
            audit::insert(&tx, &ctx.now, &AuditEntry::message(&m.key, Some(id), &event, detail))?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// Records a decision, its intent (if any) and advances the cursor, atomically.
    /// Returns the message row id and the intent id.
    pub async fn record_decision(
        &self,
        m: &NewMessage,
        decision: &Decision,
        action: Option<&Action>,
        observe_only: bool,
        eml_path: Option<String>,
    ) -> Result<(i64, Option<i64>)> {
        let r = self
            .record_decision_owned(m.clone(), decision.clone(), action.cloned(), observe_only, eml_path)
            .await?;
        Ok((r.id, r.intent))
    }

    /// [`Store::record_decision`] for the per-message path (issue 21): the
    /// message, decision and scanner reports move to the database thread
    /// and come back with the ids, instead of being cloned for the write.
    pub async fn record_decision_owned(
        &self,
        m: NewMessage,
        d: Decision,
        action: Option<Action>,
        observe_only: bool,
        eml_path: Option<String>,
    ) -> Result<Recorded> {
        self.record_row(m, d, action, observe_only, eml_path, true).await
    }

    /// Records a message that was not fetched (over the size limit) without
    /// moving the cursor: older UIDs of the same backlog may still be
    /// scanning, and the listener moves the cursor once a whole chunk has
    /// rows (issue 21: the cursor never passes a gap).
    pub async fn record_unfetched(&self, m: NewMessage, d: Decision) -> Result<i64> {
        Ok(self.record_row(m, d, None, true, None, false).await?.id)
    }

    async fn record_row(
        &self,
        m: NewMessage,
        d: Decision,
        action: Option<Action>,
        observe_only: bool,
        eml_path: Option<String>,
        move_cursor: bool,
    ) -> Result<Recorded> {
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let status = if action.is_some() { "decided" } else { "done" };
            let id = insert_message(&tx, &ctx.now, &m, status, Some(&d), observe_only, eml_path.as_deref())?;
            super::intel::record_evidence(&tx, &ctx.now, id, &d)?;
            let intent = match &action {
                Some(a) => {
                    let json = serde_json::to_string(a).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    tx.execute(
                        "INSERT INTO intents (message, account, action, state, created_at, updated_at)
                         VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
                        params![id, m.key.account, json, ctx.now],
                    )?;
                    Some(tx.last_insert_rowid())
                }
                None => None,
            };
            if move_cursor {
                advance(&tx, &ctx.now, &m.key, None)?;
            }
            let planned = match (&action, observe_only, d.verdict) {
                (Some(a), _, _) => format!("; intent: {}", a.name()),
                (None, true, v) if v != Verdict::Pass => "; observe-only, no action".to_string(),
                _ => String::new(),
            };
            audit::insert(
                &tx,
                &ctx.now,
                &AuditEntry::message(
                    &m.key,
                    Some(id),
                    "scanned",
                    format!("verdict {} ({}){planned}", d.verdict, d.reason),
                ),
            )?;
            tx.commit()?;
            Ok(Recorded { id, intent, decision: d })
        })
        .await
    }

    /// Pending intents of an account, oldest first.
    pub async fn pending_intents(&self, account: &str) -> Result<Vec<Intent>> {
        let a = account.to_string();
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT i.id, i.message, m.account, m.mailbox, m.uidvalidity, m.uid, i.action, m.message_id, m.sha256, i.attempts
                 FROM intents i JOIN messages m ON m.id = i.message
                 WHERE i.account = ?1 AND i.state = 'pending' ORDER BY i.id",
            )?;
            let rows = st.query_map(params![a], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    MessageKey {
                        account: r.get(2)?,
                        mailbox: r.get(3)?,
                        uidvalidity: r.get(4)?,
                        uid: r.get(5)?,
                    },
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, u32>(9)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, message, key, action, message_id, sha256, attempts) = row?;
                let action: Action = serde_json::from_str(&action).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                out.push(Intent {
                    id,
                    message,
                    key,
                    action,
                    message_id,
                    sha256,
                    attempts,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Closes an intent and its message, with an audit row, atomically.
    pub async fn finish_intent(
        &self,
        intent: &Intent,
        state: IntentState,
        location: Option<(String, Option<u32>)>,
        detail: String,
    ) -> Result<()> {
        let (i, loc) = (intent.clone(), location);
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE intents SET state = ?2, updated_at = ?3, attempts = attempts + 1 WHERE id = ?1 AND state = 'pending'",
                params![i.id, state.as_str(), ctx.now],
            )?;
            if changed == 0 {
                // Already closed (e.g. voided by a UIDVALIDITY change meanwhile).
                return Ok(());
            }
            let status = if state == IntentState::Stale { "stale" } else { "done" };
            let quarantined = state == IntentState::Done && i.action.destination().is_some();
            let (lm, lu) = loc.map_or((None, None), |(m, u)| (Some(m), u));
            tx.execute(
                "UPDATE messages SET status = ?2, location_mailbox = COALESCE(?3, location_mailbox),
                   location_uid = COALESCE(?4, location_uid), updated_at = ?5, quarantined = ?6 WHERE id = ?1",
                params![i.message, status, lm, lu, ctx.now, quarantined],
            )?;
            let event = match state {
                IntentState::Done => "action_done",
                IntentState::Gone => "action_skipped_gone",
                IntentState::Stale => "action_skipped_stale",
                IntentState::Refused => "action_refused",
                IntentState::Mismatch => "action_skipped_mismatch",
                IntentState::Pending => "action_pending",
            };
            audit::insert(
                &tx,
                &ctx.now,
                &AuditEntry::message(&i.key, Some(i.message), event, format!("{}: {detail}", i.action.name())),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// All stored messages of an account, oldest first.
    pub async fn message_rows(&self, account: &str) -> Result<Vec<MessageRow>> {
        let a = account.to_string();
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT id, mailbox, uidvalidity, uid, message_id, sha256, status, verdict, observe_only, eml_path,
                        location_mailbox, location_uid, score, tags, scan_json FROM messages WHERE account = ?1 ORDER BY id",
            )?;
            let rows = st.query_map(params![a], |r| {
                Ok(MessageRow {
                    id: r.get(0)?,
                    mailbox: r.get(1)?,
                    uidvalidity: r.get(2)?,
                    uid: r.get(3)?,
                    message_id: r.get(4)?,
                    sha256: r.get(5)?,
                    status: r.get(6)?,
                    verdict: r.get(7)?,
                    observe_only: r.get(8)?,
                    eml_path: r.get(9)?,
                    location_mailbox: r.get(10)?,
                    location_uid: r.get(11)?,
                    score: r.get(12)?,
                    tags: r.get(13)?,
                    scan_json: r.get(14)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

pub(super) fn insert_message(
    tx: &rusqlite::Transaction<'_>,
    now: &str,
    m: &NewMessage,
    status: &str,
    d: Option<&Decision>,
    observe_only: bool,
    eml_path: Option<&str>,
) -> Result<i64> {
    let k = &m.key;
    tx.execute(
        "INSERT INTO messages (account, mailbox, uidvalidity, uid, message_id, sha256, size, from_addr, subject,
           internal_date, status, verdict, tags, reason, observe_only, eml_path, first_seen, updated_at, score, scan_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18, ?19)",
        params![
            k.account,
            k.mailbox,
            k.uidvalidity,
            k.uid,
            m.meta.message_id,
            m.meta.sha256,
            m.meta.size as i64,
            m.meta.from,
            m.meta.subject,
            m.meta.internal_date,
            status,
            d.map(|d| d.verdict.as_str()),
            d.map(|d| d.tags.join(",")),
            d.map(|d| d.reason.as_str()),
            observe_only,
            eml_path,
            now,
            d.map(|d| d.score),
            d.and_then(|d| serde_json::to_string(&d.reports).ok())
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// [`Store::message_status`] on a connection already held.
pub(super) fn status_in(c: &rusqlite::Connection, key: &MessageKey) -> Result<Option<(i64, MessageStatus)>> {
    let row: Option<(i64, String)> = c
        .query_row(
            "SELECT id, status FROM messages WHERE account=?1 AND mailbox=?2 AND uidvalidity=?3 AND uid=?4",
            params![key.account, key.mailbox, key.uidvalidity, key.uid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(id, s)| {
        MessageStatus::parse(&s)
            .map(|st| (id, st))
            .ok_or_else(|| StoreError::Corrupt(format!("status {s}")))
    })
    .transpose()
}

/// After a UIDVALIDITY change: a row from an older generation of the same
/// mailbox with the same content (hash) or Message-ID that was already
/// handled.
///
/// Two index lookups, by content and by Message-ID. As one query with `OR`
/// and `ORDER BY id`, SQLite walked every row of the account in id order,
/// once per message: a 10,000-message backlog did 50 million row visits
/// (issue 21). `INDEXED BY` pins the plan: it fails loudly if the index is
/// ever dropped instead of silently turning quadratic again.
pub(super) fn handled_copy_in(c: &rusqlite::Connection, key: &MessageKey, sha: &str, mid: Option<&str>) -> Result<Option<i64>> {
    let mut st = c.prepare_cached(
        "SELECT MAX(id) FROM (
           SELECT id FROM messages INDEXED BY messages_by_sha
            WHERE account=?1 AND mailbox=?2 AND sha256=?4 AND uidvalidity<>?3 AND status IN ('done','known')
           UNION ALL
           SELECT id FROM messages INDEXED BY messages_by_mid
            WHERE ?5 IS NOT NULL AND account=?1 AND mailbox=?2 AND message_id=?5
              AND uidvalidity<>?3 AND status IN ('done','known'))",
    )?;
    Ok(st.query_row(params![key.account, key.mailbox, key.uidvalidity, sha, mid], |r| r.get(0))?)
}
