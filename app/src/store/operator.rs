//! Operator actions on quarantined mail (release, delete) and the rows that
//! record them. An op is written first and executed by the account's runner,
//! exactly like an intent, so a crash never half-does one.

use super::audit;
use super::{Result, Store, StoreError};
use crate::domain::{AuditEntry, Op, OpKind, OpRefusal, OpState};
use crate::domain::{Decision, MessageKey};
use rusqlite::{OptionalExtension, params};

impl Store {
    /// Records an operator request; the runner executes it.
    pub async fn request_op(&self, message: i64, kind: OpKind, actor: &str) -> Result<std::result::Result<i64, OpRefusal>> {
        let a = actor.to_string();
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let row: Option<(bool, MessageKey)> = tx
                .query_row(
                    "SELECT quarantined, account, mailbox, uidvalidity, uid FROM messages WHERE id = ?1",
                    params![message],
                    |r| {
                        Ok((
                            r.get(0)?,
                            MessageKey {
                                account: r.get(1)?,
                                mailbox: r.get(2)?,
                                uidvalidity: r.get(3)?,
                                uid: r.get(4)?,
                            },
                        ))
                    },
                )
                .optional()?;
            let Some((quarantined, key)) = row else {
                return Ok(Err(OpRefusal::NoMessage));
            };
            if !quarantined {
                return Ok(Err(OpRefusal::NotQuarantined));
            }
            let busy: Option<i64> = tx
                .query_row(
                    "SELECT id FROM ops WHERE message = ?1 AND state = 'pending'",
                    params![message],
                    |r| r.get(0),
                )
                .optional()?;
            if busy.is_some() {
                return Ok(Err(OpRefusal::Busy));
            }
            tx.execute(
                "INSERT INTO ops (message, account, kind, actor, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
                params![message, key.account, kind.as_str(), a, ctx.now],
            )?;
            let id = tx.last_insert_rowid();
            let mut e = AuditEntry::message(&key, Some(message), "op_requested", format!("{} requested", kind.as_str()));
            e.actor = a;
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(Ok(id))
        })
        .await
    }

    /// Pending ops of an account, oldest first.
    pub async fn pending_ops(&self, account: &str) -> Result<Vec<Op>> {
        let a = account.to_string();
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT o.id, o.message, m.account, m.mailbox, m.uidvalidity, m.uid, o.kind, o.actor,
                        m.location_mailbox, m.location_uid, m.message_id, m.sha256, m.eml_path, o.reason,
                        CASE WHEN o.attempts > 0 THEN o.detail END
                 FROM ops o JOIN messages m ON m.id = o.message
                 WHERE o.account = ?1 AND o.state = 'pending' ORDER BY o.id",
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
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<u32>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, Option<String>>(12)?,
                    r.get::<_, Option<String>>(13)?,
                    r.get::<_, Option<String>>(14)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, message, key, kind, actor, lm, lu, message_id, sha256, eml_path, reason, earlier_failure) = row?;
                let kind = OpKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("op kind {kind}")))?;
                let location = (lm.unwrap_or_else(|| key.mailbox.clone()), lu);
                out.push(Op {
                    id,
                    message,
                    key,
                    kind,
                    actor,
                    location,
                    message_id,
                    sha256,
                    eml_path,
                    reason,
                    earlier_failure,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Closes an op, updates where the message is, and writes the audit row.
    /// `new_location` is where a released message landed.
    pub async fn finish_op(
        &self,
        op: &Op,
        state: OpState,
        new_location: Option<(String, Option<u32>)>,
        eml_path: Option<String>,
        detail: String,
    ) -> Result<()> {
        let (op, loc) = (op.clone(), new_location);
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let n = tx.execute(
                "UPDATE ops SET state = ?2, detail = ?3, attempts = attempts + 1, updated_at = ?4 WHERE id = ?1 AND state = 'pending'",
                params![op.id, state.as_str(), detail, ctx.now],
            )?;
            if n == 0 {
                return Ok(());
            }
            match (state, op.kind) {
                (OpState::Done, OpKind::Release) => {
                    let (lm, lu) = loc.map_or((None, None), |(m, u)| (Some(m), u));
                    tx.execute(
                        "UPDATE messages SET quarantined = 0, disposition = 'released', location_mailbox = ?2,
                           location_uid = ?3, updated_at = ?4 WHERE id = ?1",
                        params![op.message, lm, lu, ctx.now],
                    )?;
                }
                (OpState::Done, OpKind::Delete) => {
                    tx.execute(
                        "UPDATE messages SET quarantined = 0, disposition = 'deleted', location_mailbox = NULL,
                           location_uid = NULL, eml_path = COALESCE(?3, eml_path), updated_at = ?2 WHERE id = ?1",
                        params![op.message, ctx.now, eml_path],
                    )?;
                }
                // Someone else removed it from quarantine; stop listing it.
                (OpState::Gone, _) => {
                    tx.execute(
                        "UPDATE messages SET quarantined = 0, disposition = 'gone', updated_at = ?2 WHERE id = ?1",
                        params![op.message, ctx.now],
                    )?;
                }
                _ => {}
            }
            let mut e = AuditEntry::message(
                &op.key,
                Some(op.message),
                &format!("{}_{}", op.kind.as_str(), state.as_str()),
                detail,
            );
            e.actor = op.actor.clone();
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Notes a failed attempt; the op stays pending.
    pub async fn op_attempt_failed(&self, op: &Op, error: &str) -> Result<()> {
        self.op_note(op, error, 1).await
    }

    /// An op that must wait (a delete on a server without UIDPLUS while
    /// the user has mail marked deleted): says why, and is not counted as
    /// a failed attempt, since nothing was tried on the message.
    pub async fn op_waits(&self, op: &Op, why: &str) -> Result<()> {
        self.op_note(op, why, 0).await
    }

    async fn op_note(&self, op: &Op, detail: &str, attempts: u32) -> Result<()> {
        let (id, detail) = (op.id, detail.to_string());
        self.call(move |db, ctx| {
            db.execute(
                "UPDATE ops SET attempts = attempts + ?4, detail = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'pending'",
                params![id, detail, ctx.now, attempts],
            )?;
            Ok(())
        })
        .await
    }

    /// State and detail of an op.
    pub async fn op_state(&self, id: i64) -> Result<Option<(OpState, Option<String>)>> {
        self.call(move |db, _| {
            let row: Option<(String, Option<String>)> = db
                .query_row("SELECT state, detail FROM ops WHERE id = ?1", params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            Ok(row.and_then(|(s, d)| OpState::parse(&s).map(|s| (s, d))))
        })
        .await
    }

    /// Replaces a message's stored verdict after a rescan; nothing moves.
    pub async fn record_rescan(&self, message: i64, d: &Decision, actor: &str) -> Result<()> {
        let (d, a) = (d.clone(), actor.to_string());
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let old: Option<(Option<String>, MessageKey)> = tx
                .query_row(
                    "SELECT verdict, account, mailbox, uidvalidity, uid FROM messages WHERE id = ?1",
                    params![message],
                    |r| {
                        Ok((
                            r.get(0)?,
                            MessageKey {
                                account: r.get(1)?,
                                mailbox: r.get(2)?,
                                uidvalidity: r.get(3)?,
                                uid: r.get(4)?,
                            },
                        ))
                    },
                )
                .optional()?;
            let Some((old, key)) = old else { return Ok(()) };
            set_verdict(&tx, &ctx.now, message, &d)?;
            let mut e = AuditEntry::message(
                &key,
                Some(message),
                "rescanned",
                format!(
                    "verdict {} -> {} ({}); nothing moved",
                    old.as_deref().unwrap_or("none"),
                    d.verdict,
                    d.reason
                ),
            );
            e.actor = a;
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

/// Replaces a message's stored scan (verdict, tags, reports) and records
/// the new scan's observables and sightings.
pub(super) fn set_verdict(tx: &rusqlite::Transaction<'_>, now: &str, message: i64, d: &Decision) -> Result<()> {
    tx.execute(
        "UPDATE messages SET verdict = ?2, tags = ?3, reason = ?4, score = ?5, scan_json = ?6, updated_at = ?7 WHERE id = ?1",
        params![
            message,
            d.verdict.as_str(),
            d.tags.join(","),
            d.reason,
            d.score,
            serde_json::to_string(&d.reports).ok(),
            now
        ],
    )?;
    super::intel::record_evidence(tx, now, message, d)
}

/// A message of the account with this content that the operator released
/// (its record id): when it comes back into a watched folder it is not
/// scanned again on the same evidence.
pub(super) fn released_copy_in(db: &rusqlite::Connection, account: &str, sha256: &str) -> Result<Option<i64>> {
    Ok(db
        .query_row(
            "SELECT m.id FROM ops o JOIN messages m ON m.id = o.message
             WHERE o.account = ?1 AND o.kind = 'release' AND o.state IN ('pending', 'done') AND m.sha256 = ?2
             ORDER BY o.id DESC LIMIT 1",
            params![account, sha256],
            |r| r.get(0),
        )
        .optional()?)
}
