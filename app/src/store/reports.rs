//! Reported phishing (issue 17, item 3): one row per message a user drops
//! into the report folder, with its re-scan, moved through
//! new → open (the operator was told) → confirmed | rejected. Each step is
//! one compare-and-set with its audit row, so two clicks (or an operator and
//! the auto-confirm) can never confirm one report twice.
//!
//! Also the rows campaign clustering reads (item 4): every recent message
//! with its sender, subject and clustering observables.

use super::audit::{self, AuditEntry};
use super::learning::user_actor;
use super::{Result, Store};
use crate::domain::{Decision, MessageKey};
use rusqlite::{OptionalExtension, params};

/// A message found in a report folder, re-scanned.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// Where the user dropped it.
    pub key: MessageKey,
    /// SHA-256 of the raw message.
    pub sha256: String,
    /// Its Message-ID.
    pub message_id: Option<String>,
    /// From address.
    pub from_addr: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// The re-scan with every engine.
    pub decision: Decision,
    /// The kept copy.
    pub eml_path: String,
}

/// One report as the queue shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportRow {
    /// Row id.
    pub id: i64,
    /// The reporter's account.
    pub account: String,
    /// The report folder.
    pub mailbox: String,
    /// UIDVALIDITY of the report folder when it was seen.
    pub uidvalidity: u32,
    /// UID in the report folder.
    pub uid: u32,
    /// SHA-256 of the message.
    pub sha256: String,
    /// Message-ID.
    pub message_id: Option<String>,
    /// From address.
    pub from_addr: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// `user:<account>`.
    pub reporter: String,
    /// The re-scan's verdict.
    pub verdict: String,
    /// The re-scan's score.
    pub score: f64,
    /// The re-scan's tags, comma-separated.
    pub tags: String,
    /// The kept copy.
    pub eml_path: String,
    /// new | open | confirmed | rejected.
    pub state: String,
    /// Who confirmed or rejected it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<String>,
    /// What confirming or rejecting did.
    pub detail: Option<String>,
    /// When it was reported.
    pub created_at: String,
    /// The re-scan (observables included); not shown.
    #[serde(skip)]
    pub decision: Option<Decision>,
}

impl ReportRow {
    /// Where the reported message sits.
    pub fn key(&self) -> MessageKey {
        MessageKey {
            account: self.account.clone(),
            mailbox: self.mailbox.clone(),
            uidvalidity: self.uidvalidity,
            uid: self.uid,
        }
    }
}

const COLUMNS: &str = "id, account, mailbox, uidvalidity, uid, sha256, message_id, from_addr, subject, reporter, verdict, score,
    tags, eml_path, state, decided_by, decided_at, detail, created_at, scan_json";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReportRow> {
    let json: String = r.get(19)?;
    Ok(ReportRow {
        id: r.get(0)?,
        account: r.get(1)?,
        mailbox: r.get(2)?,
        uidvalidity: r.get(3)?,
        uid: r.get(4)?,
        sha256: r.get(5)?,
        message_id: r.get(6)?,
        from_addr: r.get(7)?,
        subject: r.get(8)?,
        reporter: r.get(9)?,
        verdict: r.get(10)?,
        score: r.get(11)?,
        tags: r.get(12)?,
        eml_path: r.get(13)?,
        state: r.get(14)?,
        decided_by: r.get(15)?,
        decided_at: r.get(16)?,
        detail: r.get(17)?,
        created_at: r.get(18)?,
        decision: serde_json::from_str(&json).ok(),
    })
}

/// One recent message as campaign clustering sees it.
#[derive(Debug, Clone, Default)]
pub struct CampaignRow {
    /// Message row id.
    pub id: i64,
    /// Account (one mailbox per account).
    pub account: String,
    /// Folder it arrived in.
    pub mailbox: String,
    /// From address.
    pub from_addr: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Verdict.
    pub verdict: Option<String>,
    /// Whether Postern holds it in quarantine now.
    pub quarantined: bool,
    /// First seen (RFC 3339).
    pub first_seen: String,
    /// `url`, `sha256` and `tlsh` observables: (kind, value).
    pub observables: Vec<(String, String)>,
}

impl Store {
    /// Records a reported message with its re-scan and audit row. Returns
    /// the new id, or `None` when this UID was recorded before (a replay) or
    /// the same content is already reported from this folder (a re-synced
    /// folder is not a new report).
    pub async fn record_report(&self, r: NewReport) -> Result<Option<i64>> {
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let k = &r.key;
            let seen: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM reports WHERE account = ?1 AND mailbox = ?2 AND sha256 = ?3)",
                params![k.account, k.mailbox, r.sha256],
                |x| x.get(0),
            )?;
            if seen {
                return Ok(None);
            }
            let d = &r.decision;
            let json = serde_json::to_string(d).map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
            let reporter = user_actor(&k.account);
            let n = tx.execute(
                "INSERT OR IGNORE INTO reports (account, mailbox, uidvalidity, uid, sha256, message_id, from_addr, subject, reporter,
                   verdict, score, tags, scan_json, eml_path, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'new', ?15, ?15)",
                params![
                    k.account,
                    k.mailbox,
                    k.uidvalidity,
                    k.uid,
                    r.sha256,
                    r.message_id,
                    r.from_addr,
                    r.subject,
                    reporter,
                    d.verdict.as_str(),
                    d.score,
                    d.tags.join(","),
                    json,
                    r.eml_path,
                    ctx.now
                ],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let id = tx.last_insert_rowid();
            let mut e = AuditEntry::message(
                k,
                None,
                "report_received",
                format!(
                    "report #{id}: the user reported it as phishing; re-scan {} (score {:.1}{})",
                    d.verdict.as_str(),
                    d.score,
                    if d.tags.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", d.tags.join(", "))
                    }
                ),
            );
            e.actor = reporter;
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(Some(id))
        })
        .await
    }

    /// One report.
    pub async fn report(&self, id: i64) -> Result<Option<ReportRow>> {
        self.call(move |c, _| {
            Ok(c.query_row(&format!("SELECT {COLUMNS} FROM reports WHERE id = ?1"), [id], row)
                .optional()?)
        })
        .await
    }

    /// Reports, newest first; only those in `state` when given.
    pub async fn reports(&self, state: Option<&str>, limit: u32) -> Result<Vec<ReportRow>> {
        let state = state.map(str::to_string);
        self.call(move |c, _| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM reports WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![state, limit], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// Moves a report from one of `from` to `to`, with an audit row
    /// (`event`, by `actor`). Returns false when the report was not in any
    /// of `from` (someone else decided first): nothing is written then.
    pub async fn advance_report(&self, id: i64, from: &[&str], to: &str, actor: &str, event: &str, detail: String) -> Result<bool> {
        let (from, to, actor, event) = (
            from.iter().map(|s| (*s).to_string()).collect::<Vec<_>>(),
            to.to_string(),
            actor.to_string(),
            event.to_string(),
        );
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let Some(r) = tx
                .query_row(&format!("SELECT {COLUMNS} FROM reports WHERE id = ?1"), [id], row)
                .optional()?
            else {
                return Ok(false);
            };
            if !from.contains(&r.state) {
                return Ok(false);
            }
            let decided = matches!(to.as_str(), "confirmed" | "rejected");
            tx.execute(
                "UPDATE reports SET state = ?2, updated_at = ?3,
                   decided_by = CASE WHEN ?4 THEN ?5 ELSE decided_by END,
                   decided_at = CASE WHEN ?4 THEN ?3 ELSE decided_at END,
                   detail = CASE WHEN ?4 THEN ?6 ELSE detail END
                 WHERE id = ?1",
                params![id, to, ctx.now, decided, actor, detail],
            )?;
            let mut e = AuditEntry::message(&r.key(), None, &event, format!("report #{id}: {detail}"));
            e.actor = actor;
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Adds an audit row about a report (one step of confirming or
    /// rejecting it).
    pub async fn audit_report(&self, r: &ReportRow, actor: &str, event: &str, detail: String) -> Result<()> {
        let mut e = AuditEntry::message(&r.key(), None, event, format!("report #{}: {detail}", r.id));
        e.actor = actor.to_string();
        self.audit(e).await
    }

    /// Queues a confirmed report's copy as a spam lesson for Rspamd, in the
    /// same once-per-(SHA-256, class) table user feedback uses, so a message
    /// the user also filed into Junk is still learned once. Returns whether
    /// it was newly queued.
    pub async fn queue_spam_lesson(&self, sha256: &str, eml_path: &str, account: &str) -> Result<bool> {
        let (s, p, a) = (sha256.to_string(), eml_path.to_string(), account.to_string());
        self.call(move |c, ctx| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO learned (sha256, class, eml_path, state, next_at, account, created_at, updated_at)
                 VALUES (?1, 'spam', ?2, 'pending', ?3, ?4, ?3, ?3)",
                params![s, p, ctx.now, a],
            )? == 1)
        })
        .await
    }

    /// Every message first seen since `since` (newest first, at most
    /// `limit`), with the observables clustering joins on.
    pub async fn campaign_rows(&self, since: &str, limit: u32) -> Result<Vec<CampaignRow>> {
        let since = since.to_string();
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT id, account, mailbox, from_addr, subject, verdict, quarantined, first_seen FROM messages
                 WHERE first_seen >= ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let mut rows: Vec<CampaignRow> = st
                .query_map(params![since, limit], |r| {
                    Ok(CampaignRow {
                        id: r.get(0)?,
                        account: r.get(1)?,
                        mailbox: r.get(2)?,
                        from_addr: r.get(3)?,
                        subject: r.get(4)?,
                        verdict: r.get(5)?,
                        quarantined: r.get(6)?,
                        first_seen: r.get(7)?,
                        observables: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut obs =
                c.prepare_cached("SELECT kind, value FROM observables WHERE message = ?1 AND kind IN ('url', 'sha256', 'tlsh')")?;
            for r in &mut rows {
                r.observables = obs
                    .query_map([r.id], |x| Ok((x.get(0)?, x.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
            }
            Ok(rows)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{SharedClock, TestClock};
    use std::sync::Arc;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(TestClock::new("2026-11-22T10:00:00Z".parse().unwrap()));
        let s = Store::open(&dir.path().join("t.db"), &[7u8; 32], clock).unwrap();
        (dir, s)
    }

    fn report(uidvalidity: u32, uid: u32, sha: &str) -> NewReport {
        NewReport {
            key: MessageKey {
                account: "alice".into(),
                mailbox: "Report Phishing".into(),
                uidvalidity,
                uid,
            },
            sha256: sha.into(),
            message_id: Some("<m@x>".into()),
            from_addr: Some("bad@evil.test".into()),
            subject: Some("Verify".into()),
            decision: Decision::pass("clean"),
            eml_path: "/tmp/x.eml".into(),
        }
    }

    #[tokio::test]
    async fn a_report_is_recorded_once_and_decided_once() {
        let (_d, s) = store().await;
        let id = s.record_report(report(1, 5, "aa")).await.unwrap().unwrap();
        assert_eq!(s.record_report(report(1, 5, "aa")).await.unwrap(), None, "a replayed FETCH");
        assert_eq!(s.record_report(report(2, 1, "aa")).await.unwrap(), None, "a re-synced folder");
        let r = s.report(id).await.unwrap().unwrap();
        assert_eq!((r.state.as_str(), r.reporter.as_str()), ("new", "user:alice"));
        assert!(r.decision.is_some());
        assert!(
            s.advance_report(id, &["new"], "open", "postern", "report_notified", "told".into())
                .await
                .unwrap()
        );
        assert!(
            s.advance_report(id, &["new", "open"], "confirmed", "admin:a", "report_confirmed", "ok".into())
                .await
                .unwrap()
        );
        assert!(
            !s.advance_report(id, &["new", "open"], "rejected", "admin:b", "report_rejected", "no".into())
                .await
                .unwrap(),
            "a decided report stays decided"
        );
        let r = s.report(id).await.unwrap().unwrap();
        assert_eq!((r.state.as_str(), r.decided_by.as_deref()), ("confirmed", Some("admin:a")));
        let rows = s.audit_rows(Some("alice"), None, 10).await.unwrap();
        let events: Vec<&str> = rows.iter().map(|r| r.event.as_str()).collect();
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(rows.iter().any(|r| r.event == "report_received" && r.actor == "user:alice"));
        assert!(s.queue_spam_lesson("aa", "/tmp/x.eml", "alice").await.unwrap());
        assert!(!s.queue_spam_lesson("aa", "/tmp/x.eml", "alice").await.unwrap(), "learned once");
    }
}
