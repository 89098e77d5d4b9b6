//! Search and purge (issue 17, item 5): a job records one operator search
//! (its dry-run counts and the matching UIDs); purging queues the items for
//! each account's runner, which moves them and closes them here, audited per
//! message in the same transaction.

use super::audit::{self, AuditEntry};
use super::{Result, Store};
use crate::domain::MessageKey;
use rusqlite::{OptionalExtension, Transaction, params};

/// One UID the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeHit {
    /// Account.
    pub account: String,
    /// Folder.
    pub mailbox: String,
    /// The folder's UIDVALIDITY at search time.
    pub uidvalidity: u32,
    /// UID.
    pub uid: u32,
}

/// A job as stored, with its progress.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PurgeJobRow {
    /// Job id.
    pub id: i64,
    /// sender | subject | message_id | url | sha256.
    pub criterion: String,
    /// What was searched for.
    pub value: String,
    /// Who searched.
    pub actor: String,
    /// counted (dry run only) | running | done.
    pub state: String,
    /// The dry run: one entry per mailbox searched (JSON as the runtime wrote it).
    pub counts: serde_json::Value,
    /// Messages matched.
    pub matched: u64,
    /// Mailboxes with matches.
    pub mailboxes_total: u64,
    /// Mailboxes whose matches are all handled.
    pub mailboxes_done: u64,
    /// Messages moved to quarantine.
    pub moved: u64,
    /// Messages left alone because their account is in shadow mode.
    pub observed: u64,
    /// Messages gone or refused.
    pub failed: u64,
    /// Created.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// One matching message of a job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PurgeItemRow {
    /// Item id.
    pub id: i64,
    /// Account.
    pub account: String,
    /// Folder it was found in.
    pub mailbox: String,
    /// UIDVALIDITY at search time.
    pub uidvalidity: u32,
    /// UID.
    pub uid: u32,
    /// The stored message, when Postern scanned it.
    pub message: Option<i64>,
    /// matched | pending | moved | observed | gone | failed.
    pub state: String,
    /// What happened.
    pub detail: Option<String>,
    /// The EML copy kept before the move.
    pub eml_path: Option<String>,
}

/// A pending item, for the runner.
#[derive(Debug, Clone)]
pub struct PurgeItem {
    /// Item id.
    pub id: i64,
    /// Job id.
    pub job: i64,
    /// Where it was found.
    pub key: MessageKey,
    /// The stored message, when known.
    pub message: Option<i64>,
    /// Who asked for the purge (the audit actor).
    pub actor: String,
}

/// Why a job cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeRefusal {
    /// No such job.
    NoJob,
    /// It ran (or runs) already.
    Started,
}

/// How a runner closes an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeDone {
    /// moved | observed | gone | failed.
    pub state: &'static str,
    /// For the audit row and the page.
    pub detail: String,
    /// The EML copy kept before moving.
    pub eml_path: Option<String>,
    /// Where it went: (quarantine folder, new UID).
    pub moved_to: Option<(String, Option<u32>)>,
}

fn job_row(tx: &rusqlite::Connection, id: i64) -> rusqlite::Result<Option<PurgeJobRow>> {
    tx.query_row(
        "SELECT j.id, j.criterion, j.value, j.actor, j.state, j.counts, j.created_at, j.updated_at,
                (SELECT count(*) FROM purge_items WHERE job = j.id),
                (SELECT count(DISTINCT account || char(0) || mailbox) FROM purge_items WHERE job = j.id),
                (SELECT count(DISTINCT account || char(0) || mailbox) FROM purge_items i WHERE i.job = j.id
                   AND NOT EXISTS (SELECT 1 FROM purge_items p WHERE p.job = j.id AND p.account = i.account
                                   AND p.mailbox = i.mailbox AND p.state IN ('matched', 'pending'))),
                (SELECT count(*) FROM purge_items WHERE job = j.id AND state = 'moved'),
                (SELECT count(*) FROM purge_items WHERE job = j.id AND state = 'observed'),
                (SELECT count(*) FROM purge_items WHERE job = j.id AND state IN ('gone', 'failed'))
         FROM purge_jobs j WHERE j.id = ?1",
        params![id],
        |r| {
            let counts: String = r.get(5)?;
            let n = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
            Ok(PurgeJobRow {
                id: r.get(0)?,
                criterion: r.get(1)?,
                value: r.get(2)?,
                actor: r.get(3)?,
                state: r.get(4)?,
                counts: serde_json::from_str(&counts).unwrap_or(serde_json::Value::Null),
                created_at: r.get(6)?,
                updated_at: r.get(7)?,
                matched: n(8)?,
                mailboxes_total: n(9)?,
                mailboxes_done: n(10)?,
                moved: n(11)?,
                observed: n(12)?,
                failed: n(13)?,
            })
        },
    )
    .optional()
}

fn job_audit(job: i64, actor: &str, event: &str, detail: String) -> AuditEntry {
    AuditEntry {
        actor: actor.to_string(),
        event: event.to_string(),
        detail: format!("purge job #{job}: {detail}"),
        ..Default::default()
    }
}

/// Closes the job once no item waits any more.
fn maybe_finish(tx: &Transaction<'_>, now: &str, job: i64) -> Result<()> {
    let open: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM purge_items WHERE job = ?1 AND state = 'pending')",
        params![job],
        |r| r.get(0),
    )?;
    if open {
        return Ok(());
    }
    let n = tx.execute(
        "UPDATE purge_jobs SET state = 'done', updated_at = ?2 WHERE id = ?1 AND state = 'running'",
        params![job, now],
    )?;
    if n > 0
        && let Some(j) = job_row(tx, job)?
    {
        let d = format!(
            "finished: {} moved, {} observed (shadow), {} not done",
            j.moved, j.observed, j.failed
        );
        audit::insert(tx, now, &job_audit(job, &j.actor, "purge_finished", d))?;
    }
    Ok(())
}

impl Store {
    /// Records a search: the job, its dry-run counts and every hit (linked
    /// to the stored message when Postern scanned it). Audited.
    pub async fn create_purge_job(
        &self,
        criterion: &str,
        value: &str,
        actor: &str,
        counts: serde_json::Value,
        hits: Vec<PurgeHit>,
    ) -> Result<i64> {
        let (c, v, a) = (criterion.to_string(), value.to_string(), actor.to_string());
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            tx.execute(
                "INSERT INTO purge_jobs (criterion, value, actor, state, counts, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'counted', ?4, ?5, ?5)",
                params![c, v, a, counts.to_string(), ctx.now],
            )?;
            let job = tx.last_insert_rowid();
            for h in &hits {
                let message: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM messages WHERE account = ?1 AND mailbox = ?2 AND uidvalidity = ?3 AND uid = ?4",
                        params![h.account, h.mailbox, h.uidvalidity, h.uid],
                        |r| r.get(0),
                    )
                    .optional()?;
                tx.execute(
                    "INSERT OR IGNORE INTO purge_items (job, account, mailbox, uidvalidity, uid, message, state, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'matched', ?7)",
                    params![job, h.account, h.mailbox, h.uidvalidity, h.uid, message, ctx.now],
                )?;
            }
            let detail = format!("searched {c} {v:?}: {} message(s) match (dry run, nothing moved)", hits.len());
            audit::insert(&tx, &ctx.now, &job_audit(job, &a, "purge_search", detail))?;
            tx.commit()?;
            Ok(job)
        })
        .await
    }

    /// Scanned messages, still where they arrived and not handled, whose
    /// observables of `kind` equal `value` (or contain it, for URLs):
    /// `(account, folder, UIDVALIDITY, UID)`. The IOC index knows hashes
    /// IMAP SEARCH cannot look for.
    pub async fn purge_candidates(&self, kind: &str, value: &str, substring: bool) -> Result<Vec<(String, String, u32, u32)>> {
        let (k, v) = (kind.to_string(), value.to_string());
        self.call(move |db, _| {
            let pattern = if substring {
                let escaped = v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                format!("%{escaped}%")
            } else {
                v
            };
            let op = if substring { "LIKE ?2 ESCAPE '\\'" } else { "= ?2" };
            let sql = format!(
                "SELECT DISTINCT m.account, m.mailbox, m.uidvalidity, m.uid FROM observables o JOIN messages m ON m.id = o.message
                 WHERE o.kind = ?1 AND o.value {op} AND m.quarantined = 0 AND m.disposition IS NULL
                 ORDER BY m.account, m.mailbox, m.uid LIMIT 10000"
            );
            let mut st = db.prepare(&sql)?;
            let rows = st.query_map(params![k, pattern], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// One job with its progress.
    pub async fn purge_job(&self, id: i64) -> Result<Option<PurgeJobRow>> {
        self.call(move |db, _| Ok(job_row(db, id)?)).await
    }

    /// The newest jobs.
    pub async fn purge_jobs(&self, limit: u32) -> Result<Vec<PurgeJobRow>> {
        self.call(move |db, _| {
            let ids: Vec<i64> = {
                let mut st = db.prepare("SELECT id FROM purge_jobs ORDER BY id DESC LIMIT ?1")?;
                st.query_map(params![limit], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Vec::new();
            for id in ids {
                out.extend(job_row(db, id)?);
            }
            Ok(out)
        })
        .await
    }

    /// A job's matching messages.
    pub async fn purge_items(&self, job: i64) -> Result<Vec<PurgeItemRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT id, account, mailbox, uidvalidity, uid, message, state, detail, eml_path
                 FROM purge_items WHERE job = ?1 ORDER BY account, mailbox, uid",
            )?;
            let rows = st.query_map(params![job], |r| {
                Ok(PurgeItemRow {
                    id: r.get(0)?,
                    account: r.get(1)?,
                    mailbox: r.get(2)?,
                    uidvalidity: r.get(3)?,
                    uid: r.get(4)?,
                    message: r.get(5)?,
                    state: r.get(6)?,
                    detail: r.get(7)?,
                    eml_path: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Starts a counted job: its items become pending for the runners.
    /// Returns the accounts that have work.
    pub async fn start_purge(&self, id: i64, actor: &str) -> Result<std::result::Result<Vec<String>, PurgeRefusal>> {
        let a = actor.to_string();
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let Some(job) = job_row(&tx, id)? else {
                return Ok(Err(PurgeRefusal::NoJob));
            };
            if job.state != "counted" {
                return Ok(Err(PurgeRefusal::Started));
            }
            tx.execute(
                "UPDATE purge_jobs SET state = 'running', updated_at = ?2 WHERE id = ?1",
                params![id, ctx.now],
            )?;
            tx.execute(
                "UPDATE purge_items SET state = 'pending', updated_at = ?2 WHERE job = ?1 AND state = 'matched'",
                params![id, ctx.now],
            )?;
            let accounts: Vec<String> = {
                let mut st = tx.prepare("SELECT DISTINCT account FROM purge_items WHERE job = ?1 AND state = 'pending'")?;
                st.query_map(params![id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
            };
            let detail = format!("purge of {} message(s) to quarantine started", job.matched);
            audit::insert(&tx, &ctx.now, &job_audit(id, &a, "purge_started", detail))?;
            maybe_finish(&tx, &ctx.now, id)?;
            tx.commit()?;
            Ok(Ok(accounts))
        })
        .await
    }

    /// An account's pending purge items, oldest job first, by folder.
    pub async fn pending_purge_items(&self, account: &str) -> Result<Vec<PurgeItem>> {
        let a = account.to_string();
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT i.id, i.job, i.account, i.mailbox, i.uidvalidity, i.uid, i.message, j.actor
                 FROM purge_items i JOIN purge_jobs j ON j.id = i.job
                 WHERE i.account = ?1 AND i.state = 'pending' ORDER BY i.job, i.mailbox, i.uid",
            )?;
            let rows = st.query_map(params![a], |r| {
                Ok(PurgeItem {
                    id: r.get(0)?,
                    job: r.get(1)?,
                    key: MessageKey {
                        account: r.get(2)?,
                        mailbox: r.get(3)?,
                        uidvalidity: r.get(4)?,
                        uid: r.get(5)?,
                    },
                    message: r.get(6)?,
                    actor: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Closes one item: the item, the stored message's location (when it
    /// moved) and the audit row are one transaction, so a crash leaves the
    /// item pending and the runner simply looks again.
    pub async fn finish_purge_item(&self, item: &PurgeItem, done: PurgeDone) -> Result<()> {
        let item = item.clone();
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let n = tx.execute(
                "UPDATE purge_items SET state = ?2, detail = ?3, eml_path = ?4, updated_at = ?5 WHERE id = ?1 AND state = 'pending'",
                params![item.id, done.state, done.detail, done.eml_path, ctx.now],
            )?;
            if n == 0 {
                return Ok(());
            }
            if let (Some(id), Some((folder, uid))) = (item.message, &done.moved_to) {
                tx.execute(
                    "UPDATE messages SET quarantined = 1, location_mailbox = ?2, location_uid = ?3,
                       eml_path = COALESCE(?4, eml_path), updated_at = ?5 WHERE id = ?1",
                    params![id, folder, uid, done.eml_path, ctx.now],
                )?;
                tx.execute("DELETE FROM rechecks WHERE message = ?1 AND state = 'pending'", params![id])?;
            }
            let event = match done.state {
                "moved" => "purged",
                "observed" => "purge_observed",
                _ => "purge_not_done",
            };
            let mut e = AuditEntry::message(&item.key, item.message, event, format!("purge job #{}: {}", item.job, done.detail));
            e.actor = item.actor.clone();
            audit::insert(&tx, &ctx.now, &e)?;
            maybe_finish(&tx, &ctx.now, item.job)?;
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
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock::new(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()));
        let s = Store::open(&dir.path().join("p.db"), &[3; 32], clock).unwrap();
        (dir, s)
    }

    fn hit(account: &str, uid: u32) -> PurgeHit {
        PurgeHit {
            account: account.into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid,
        }
    }

    #[tokio::test]
    async fn a_job_counts_starts_once_and_finishes_when_every_item_is_closed() {
        let (_d, s) = store();
        let counts = serde_json::json!([{ "account": "a", "mailbox": "INBOX", "matches": 2 }]);
        let job = s
            .create_purge_job(
                "sender",
                "x@evil.test",
                "admin:admin",
                counts,
                vec![hit("a", 1), hit("a", 2), hit("b", 1)],
            )
            .await
            .unwrap();
        let j = s.purge_job(job).await.unwrap().unwrap();
        assert_eq!(
            (j.state.as_str(), j.matched, j.mailboxes_total, j.mailboxes_done),
            ("counted", 3, 2, 0)
        );
        assert!(s.pending_purge_items("a").await.unwrap().is_empty(), "a dry run queues nothing");
        let mut accounts = s.start_purge(job, "admin:admin").await.unwrap().unwrap();
        accounts.sort();
        assert_eq!(accounts, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(s.start_purge(job, "admin:admin").await.unwrap(), Err(PurgeRefusal::Started));
        assert_eq!(s.start_purge(999, "admin:admin").await.unwrap(), Err(PurgeRefusal::NoJob));
        let items = s.pending_purge_items("a").await.unwrap();
        assert_eq!(items.len(), 2);
        for (i, state) in items.iter().zip(["moved", "gone"]) {
            let done = PurgeDone {
                state,
                detail: "test".into(),
                eml_path: None,
                moved_to: None,
            };
            s.finish_purge_item(i, done).await.unwrap();
        }
        let j = s.purge_job(job).await.unwrap().unwrap();
        assert_eq!((j.state.as_str(), j.mailboxes_done, j.moved, j.failed), ("running", 1, 1, 1));
        let b = s.pending_purge_items("b").await.unwrap();
        let observed = PurgeDone {
            state: "observed",
            detail: "shadow".into(),
            eml_path: None,
            moved_to: None,
        };
        s.finish_purge_item(&b[0], observed).await.unwrap();
        let j = s.purge_job(job).await.unwrap().unwrap();
        assert_eq!((j.state.as_str(), j.mailboxes_done, j.observed), ("done", 2, 1));
        let audit = s.audit_rows(None, None, 50).await.unwrap();
        let events: Vec<&str> = audit.iter().map(|r| r.event.as_str()).collect();
        for e in [
            "purge_search",
            "purge_started",
            "purged",
            "purge_not_done",
            "purge_observed",
            "purge_finished",
        ] {
            assert!(events.contains(&e), "{e} missing from {events:?}");
        }
    }
}
