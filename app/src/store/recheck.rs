//! Claw-back bookkeeping: scheduled re-scans after delivery, recheck ops
//! requested by Postern itself, and how a recheck ends.

use super::audit::{self, AuditEntry};
use super::{Op, OpKind, OpState, Result, Store};
use crate::domain::{Decision, MessageKey};
use rusqlite::{OptionalExtension, Transaction, params};

/// How a recheck ended, for [`Store::finish_recheck`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecheckOutcome {
    /// Done (found and scanned), Gone (not found anywhere), Refused.
    pub state: OpState,
    /// The new scan, when the message was found.
    pub decision: Option<Decision>,
    /// Where it was moved to (quarantine folder, UID), if it was.
    pub moved_to: Option<(String, Option<u32>)>,
    /// EML copy written before moving.
    pub eml_path: Option<String>,
    /// For the audit row.
    pub detail: String,
}

/// A message's key, verdict, quarantined flag and disposition.
type Handled = (MessageKey, Option<String>, bool, Option<String>);

fn key_of(tx: &Transaction<'_>, message: i64) -> Result<Option<Handled>> {
    Ok(tx
        .query_row(
            "SELECT account, mailbox, uidvalidity, uid, verdict, quarantined, disposition FROM messages WHERE id = ?1",
            params![message],
            |r| {
                Ok((
                    MessageKey {
                        account: r.get(0)?,
                        mailbox: r.get(1)?,
                        uidvalidity: r.get(2)?,
                        uid: r.get(3)?,
                    },
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()?)
}

/// Queues a recheck op unless the message is already handled or busy.
fn queue(tx: &Transaction<'_>, now: &str, message: i64, reason: &str, actor: &str) -> Result<Option<i64>> {
    let Some((key, verdict, quarantined, disposition)) = key_of(tx, message)? else {
        return Ok(None);
    };
    let actionable = !quarantined && disposition.is_none() && matches!(verdict.as_deref(), Some("pass" | "flag"));
    let busy: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM ops WHERE message = ?1 AND state = 'pending')",
        params![message],
        |r| r.get(0),
    )?;
    if !actionable || busy {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO ops (message, account, kind, actor, state, reason, created_at, updated_at)
         VALUES (?1, ?2, 'recheck', ?3, 'pending', ?4, ?5, ?5)",
        params![message, key.account, actor, reason, now],
    )?;
    let id = tx.last_insert_rowid();
    super::incidents::on_clawback(tx, now, message, id, reason)?;
    let mut e = AuditEntry::message(&key, Some(message), "recheck_requested", reason.to_string());
    e.actor = actor.to_string();
    audit::insert(tx, now, &e)?;
    Ok(Some(id))
}

/// What asking for an operator quarantine found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineRequest {
    /// Queued as this op.
    Queued(i64),
    /// No such message.
    Missing,
    /// Already in quarantine (or held).
    AlreadyQuarantined,
    /// Deleted, or gone from the mailbox: nothing to move.
    Gone,
    /// Another op on it has not finished yet.
    Busy,
}

impl Store {
    /// Asks the account's runner to find a message wherever the user filed
    /// it and quarantine it without a re-scan (the operator decided, e.g.
    /// for a whole campaign). A released message may be quarantined again.
    pub async fn request_quarantine(&self, message: i64, reason: &str, actor: &str) -> Result<QuarantineRequest> {
        let (r, a) = (reason.to_string(), actor.to_string());
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let Some((key, _, quarantined, disposition)) = key_of(&tx, message)? else {
                return Ok(QuarantineRequest::Missing);
            };
            if quarantined {
                return Ok(QuarantineRequest::AlreadyQuarantined);
            }
            if matches!(disposition.as_deref(), Some("deleted" | "gone")) {
                return Ok(QuarantineRequest::Gone);
            }
            let busy: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM ops WHERE message = ?1 AND state = 'pending')",
                params![message],
                |x| x.get(0),
            )?;
            if busy {
                return Ok(QuarantineRequest::Busy);
            }
            tx.execute(
                "INSERT INTO ops (message, account, kind, actor, state, reason, created_at, updated_at)
                 VALUES (?1, ?2, 'quarantine', ?3, 'pending', ?4, ?5, ?5)",
                params![message, key.account, a, r, ctx.now],
            )?;
            let id = tx.last_insert_rowid();
            let mut e = AuditEntry::message(&key, Some(message), "quarantine_requested", r.clone());
            e.actor = a;
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(QuarantineRequest::Queued(id))
        })
        .await
    }

    /// Asks the account's runner to re-check a message (claw-back). `None`
    /// when it is quarantined, released, deleted, observe-only or busy.
    pub async fn request_recheck(&self, message: i64, reason: &str, actor: &str) -> Result<Option<i64>> {
        let (r, a) = (reason.to_string(), actor.to_string());
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let id = queue(&tx, &ctx.now, message, &r, &a)?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// Schedules re-scans of a message: `(stage, due_at RFC 3339)`.
    pub async fn schedule_rechecks(&self, message: i64, due: Vec<(String, String)>) -> Result<()> {
        self.call(move |db, _| {
            let tx = db.transaction()?;
            for (stage, at) in &due {
                tx.execute(
                    "INSERT OR IGNORE INTO rechecks (message, stage, due_at) VALUES (?1, ?2, ?3)",
                    params![message, stage, at],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Turns every scheduled re-scan due at the store clock's now into a
    /// recheck op; returns the op ids.
    pub async fn queue_due_rechecks(&self) -> Result<Vec<i64>> {
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let due: Vec<(i64, String)> = {
                let mut st = tx.prepare("SELECT message, stage FROM rechecks WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at")?;
                st.query_map(params![ctx.now], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let mut ops = Vec::new();
            for (message, stage) in due {
                tx.execute(
                    "UPDATE rechecks SET state = 'queued' WHERE message = ?1 AND stage = ?2",
                    params![message, stage],
                )?;
                let reason = format!("scheduled re-scan {stage} after delivery");
                ops.extend(queue(&tx, &ctx.now, message, &reason, "postern")?);
            }
            tx.commit()?;
            Ok(ops)
        })
        .await
    }

    /// Closes a recheck op: records the new scan and sightings, and where
    /// the message went. A message moved to quarantine is audited as
    /// `retro_quarantine` with the reason and the evidence.
    pub async fn finish_recheck(&self, op: &Op, out: RecheckOutcome) -> Result<()> {
        let op = op.clone();
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let n = tx.execute(
                "UPDATE ops SET state = ?2, detail = ?3, attempts = attempts + 1, updated_at = ?4 WHERE id = ?1 AND state = 'pending'",
                params![op.id, out.state.as_str(), out.detail, ctx.now],
            )?;
            if n == 0 {
                return Ok(());
            }
            if let Some(d) = &out.decision {
                super::operator::set_verdict(&tx, &ctx.now, op.message, d)?;
            }
            if let Some((folder, uid)) = &out.moved_to {
                tx.execute(
                    "UPDATE messages SET quarantined = 1, disposition = NULL, location_mailbox = ?2, location_uid = ?3,
                       eml_path = COALESCE(?4, eml_path), updated_at = ?5 WHERE id = ?1",
                    params![op.message, folder, uid, out.eml_path, ctx.now],
                )?;
                tx.execute("DELETE FROM rechecks WHERE message = ?1 AND state = 'pending'", params![op.message])?;
            }
            let event = match (&out.moved_to, out.state, op.kind) {
                (Some(_), _, OpKind::Quarantine) => "operator_quarantine",
                (None, _, OpKind::Quarantine) => "operator_quarantine_not_done",
                (Some(_), _, _) => "retro_quarantine",
                (None, OpState::Done, _) => "rechecked",
                (None, _, _) => "recheck_not_done",
            };
            let reason = op.reason.as_deref().unwrap_or("re-check");
            let mut e = AuditEntry::message(&op.key, Some(op.message), event, format!("{reason}: {}", out.detail));
            e.actor = op.actor.clone();
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use crate::domain::{Observable, Verdict};
    use crate::store::{MessageMeta, NewMessage};
    use std::sync::Arc;

    fn msg(uid: u32) -> NewMessage {
        NewMessage {
            key: MessageKey {
                account: "a".into(),
                mailbox: "INBOX".into(),
                uidvalidity: 7,
                uid,
            },
            meta: MessageMeta {
                message_id: Some(format!("m{uid}@x")),
                sha256: format!("{uid:064}"),
                size: 10,
                ..Default::default()
            },
        }
    }

    #[tokio::test]
    async fn scheduled_rescans_fall_due_on_the_injected_clock_and_skip_handled_mail() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap().to_utc();
        let clock = TestClock::new(t0);
        let store = Store::open(&dir.path().join("db"), &[7; 32], Arc::new(clock.clone())).unwrap();
        let mut d = Decision::pass("clean");
        d.observables = vec![Observable {
            kind: "url".into(),
            value: "https://x.test/".into(),
        }];
        let (a, _) = store.record_decision(&msg(1), &d, None, false, None).await.unwrap();
        let (b, _) = store.record_decision(&msg(2), &d, None, false, None).await.unwrap();
        let at = |m: i64| (t0 + chrono::Duration::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for id in [a, b] {
            store
                .schedule_rechecks(id, vec![("+5m".into(), at(5)), ("+12h".into(), at(720))])
                .await
                .unwrap();
        }
        assert!(store.queue_due_rechecks().await.unwrap().is_empty(), "nothing due yet");
        clock.advance(chrono::Duration::minutes(5));
        let ops = store.queue_due_rechecks().await.unwrap();
        assert_eq!(ops.len(), 2);
        assert!(store.queue_due_rechecks().await.unwrap().is_empty(), "queued once");
        let pending = store.pending_ops("a").await.unwrap();
        assert_eq!(pending[0].reason.as_deref(), Some("scheduled re-scan +5m after delivery"));
        // The first recheck finds the message malicious and moves it.
        let mut q = Decision::pass("");
        q.verdict = Verdict::Quarantine;
        let out = RecheckOutcome {
            state: OpState::Done,
            decision: Some(q),
            moved_to: Some(("Quarantine".into(), Some(3))),
            eml_path: Some("/x.eml".into()),
            detail: "moved".into(),
        };
        store.finish_recheck(&pending[0], out).await.unwrap();
        assert_eq!(store.quarantine_count().await.unwrap(), 1, "the trigger-kept counter follows");
        let other = RecheckOutcome {
            state: OpState::Done,
            decision: Some(Decision::pass("still clean")),
            moved_to: None,
            eml_path: None,
            detail: "still pass".into(),
        };
        store.finish_recheck(&pending[1], other).await.unwrap();
        clock.advance(chrono::Duration::hours(12));
        let later = store.queue_due_rechecks().await.unwrap();
        assert_eq!(later.len(), 1, "the quarantined one is not re-checked again");
        assert_eq!(store.pending_ops("a").await.unwrap()[0].message, b);
        let audit = store.audit_rows(Some("a"), Some("retro_quarantine"), 10).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert!(
            audit[0].detail.starts_with("scheduled re-scan +5m after delivery: moved"),
            "{}",
            audit[0].detail
        );
        // Observables are kept for claw-back only while the message may be acted on.
        let since = at(-60);
        let obs = store.recent_observables(&since).await.unwrap();
        assert_eq!(obs.iter().map(|o| o.message).collect::<Vec<_>>(), vec![b]);
    }
}
