//! The first-run bootstrap (issue 17): the messages already in an account's
//! Junk and watched folders are listed once, then each is learned in its
//! own transaction (item state, feedback row, lesson), so a restart, even
//! after a SIGKILL, resumes at the next item and learns nothing twice.

use super::audit::{self, AuditEntry};
use super::{Result, Store};
use crate::domain::MessageKey;
use crate::scan::learn::Class;
use rusqlite::{OptionalExtension, params};

/// A message listed for the bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootItem {
    /// Where it is.
    pub key: MessageKey,
    /// What it is taken as.
    pub class: Class,
}

/// What became of one listed message.
#[derive(Debug, Clone)]
pub enum BootOutcome {
    /// Fetched and recorded: the lesson is queued unless it already was.
    Learn {
        /// SHA-256 of the raw message.
        sha256: String,
        /// Its Message-ID.
        message_id: Option<String>,
        /// The stored copy Rspamd learns from.
        eml_path: String,
    },
    /// Not learned (gone, over the size limit, moved there by Postern).
    Skip(String),
}

/// One account's bootstrap, for the dashboard, `/health` and `/metrics`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BootstrapProgress {
    /// The account.
    pub account: String,
    /// learning | done.
    pub state: String,
    /// Messages listed.
    pub total: u32,
    /// Of those, handled.
    pub done: u32,
    /// New lessons queued for Rspamd.
    pub queued: u32,
    /// Messages per minute since this process resumed it (none yet: 0).
    pub per_minute: f64,
    /// When it began.
    pub started_at: String,
    /// When it finished.
    pub finished_at: Option<String>,
}

/// Lessons by class and state (learning progress).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LessonCounts {
    /// Waiting for (or retrying) the Rspamd controller.
    pub pending: u32,
    /// Learned by Rspamd.
    pub learned: u32,
    /// Declined by Rspamd.
    pub skipped: u32,
    /// Given up.
    pub failed: u32,
    /// Spam lessons, any state.
    pub spam: u32,
    /// Ham lessons, any state.
    pub ham: u32,
}

fn class_of(s: &str) -> Class {
    Class::parse(s).unwrap_or(Class::Spam)
}

impl Store {
    /// Whether the account's bootstrap was listed (`Some(done?)`).
    pub async fn bootstrap_started(&self, account: &str) -> Result<Option<bool>> {
        let a = account.to_string();
        self.call(move |c, _| {
            Ok(
                c.query_row("SELECT state = 'done' FROM bootstrap WHERE account = ?1", params![a], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    /// Stores the listed messages and starts the bootstrap, atomically: a
    /// crash before this lists again, a crash after resumes.
    pub async fn begin_bootstrap(&self, account: &str, ham_days: u32, items: Vec<BootItem>, detail: String) -> Result<()> {
        let a = account.to_string();
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            for i in &items {
                let k = &i.key;
                tx.execute(
                    "INSERT OR IGNORE INTO bootstrap_items (account, mailbox, uidvalidity, uid, class) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![k.account, k.mailbox, k.uidvalidity, k.uid, i.class.as_str()],
                )?;
            }
            let total = items.len() as i64;
            tx.execute(
                "INSERT INTO bootstrap (account, state, ham_days, total, started_at, resumed_at, updated_at, detail)
                 VALUES (?1, 'learning', ?2, ?3, ?4, ?4, ?4, ?5)",
                params![a, ham_days, total, ctx.now, detail],
            )?;
            let e = AuditEntry {
                actor: "postern".into(),
                account: Some(a.clone()),
                event: "bootstrap_started".into(),
                detail: format!("{total} messages to learn: {detail}; observe-only"),
                ..Default::default()
            };
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Marks the start of this process's run, so the rate counts only what
    /// this run did.
    pub async fn resume_bootstrap(&self, account: &str) -> Result<()> {
        let a = account.to_string();
        self.call(move |c, ctx| {
            c.execute(
                "UPDATE bootstrap SET resumed_at = ?2, done_at_resume = done WHERE account = ?1",
                params![a, ctx.now],
            )?;
            Ok(())
        })
        .await
    }

    /// The next pending items, by folder and UID.
    pub async fn bootstrap_pending(&self, account: &str, limit: u32) -> Result<Vec<BootItem>> {
        let a = account.to_string();
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT mailbox, uidvalidity, uid, class FROM bootstrap_items
                 WHERE account = ?1 AND state = 'pending' ORDER BY mailbox, uid LIMIT ?2",
            )?;
            let rows = st.query_map(params![a, limit], |r| {
                Ok(BootItem {
                    key: MessageKey {
                        account: a.clone(),
                        mailbox: r.get(0)?,
                        uidvalidity: r.get(1)?,
                        uid: r.get(2)?,
                    },
                    class: class_of(&r.get::<_, String>(3)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Records one item's outcome with its feedback row and lesson, in one
    /// transaction. Returns whether a new lesson was queued (false: the
    /// item was handled before, or the lesson already exists).
    pub async fn finish_boot_item(&self, item: &BootItem, outcome: BootOutcome) -> Result<bool> {
        let item = item.clone();
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let k = &item.key;
            let class = item.class.as_str();
            let (state, sha, detail, queued) = match &outcome {
                BootOutcome::Skip(why) => ("skipped", None, Some(why.clone()), false),
                BootOutcome::Learn {
                    sha256,
                    message_id,
                    eml_path,
                } => {
                    let source = match item.class {
                        Class::Spam => format!("bootstrap: in {} before learning began", k.mailbox),
                        Class::Ham => format!("bootstrap: read and kept in {}", k.mailbox),
                    };
                    let message: Option<i64> = tx
                        .query_row(
                            "SELECT id FROM messages WHERE account = ?1 AND sha256 = ?2 ORDER BY id DESC LIMIT 1",
                            params![k.account, sha256],
                            |r| r.get(0),
                        )
                        .optional()?;
                    tx.execute(
                        "INSERT OR IGNORE INTO feedback (account, mailbox, uidvalidity, uid, sha256, message_id, class, source, message, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![k.account, k.mailbox, k.uidvalidity, k.uid, sha256, message_id, class, source, message, ctx.now],
                    )?;
                    let queued = tx.execute(
                        "INSERT OR IGNORE INTO learned (sha256, class, eml_path, state, next_at, account, created_at, updated_at)
                         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?4, ?4)",
                        params![sha256, class, eml_path, ctx.now, k.account],
                    )? == 1;
                    let state = if queued { "queued" } else { "known" };
                    (state, Some(sha256.clone()), None, queued)
                }
            };
            let changed = tx.execute(
                "UPDATE bootstrap_items SET state = ?5, sha256 = ?6, detail = ?7
                 WHERE account = ?1 AND mailbox = ?2 AND uidvalidity = ?3 AND uid = ?4 AND state = 'pending'",
                params![k.account, k.mailbox, k.uidvalidity, k.uid, state, sha, detail],
            )?;
            if changed == 0 {
                // Handled before: roll back so nothing is counted twice.
                return Ok(false);
            }
            tx.execute(
                "UPDATE bootstrap SET done = done + 1, queued = queued + ?2, updated_at = ?3 WHERE account = ?1",
                params![k.account, i64::from(queued), ctx.now],
            )?;
            tx.commit()?;
            Ok(queued)
        })
        .await
    }

    /// Ends the bootstrap when nothing is pending; returns whether it ended.
    pub async fn finish_bootstrap(&self, account: &str) -> Result<bool> {
        let a = account.to_string();
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let left: i64 = tx.query_row(
                "SELECT COUNT(*) FROM bootstrap_items WHERE account = ?1 AND state = 'pending'",
                params![a],
                |r| r.get(0),
            )?;
            if left > 0 {
                return Ok(false);
            }
            let ended = tx.execute(
                "UPDATE bootstrap SET state = 'done', finished_at = ?2, updated_at = ?2 WHERE account = ?1 AND state = 'learning'",
                params![a, ctx.now],
            )? == 1;
            if ended {
                let (done, queued): (i64, i64) =
                    tx.query_row("SELECT done, queued FROM bootstrap WHERE account = ?1", params![a], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                let e = AuditEntry {
                    actor: "postern".into(),
                    account: Some(a.clone()),
                    event: "bootstrap_done".into(),
                    detail: format!("{done} messages handled, {queued} new lessons queued; nothing moved"),
                    ..Default::default()
                };
                audit::insert(&tx, &ctx.now, &e)?;
            }
            tx.commit()?;
            Ok(ended)
        })
        .await
    }

    /// Every account's bootstrap, with its rate in this run.
    pub async fn bootstrap_progress(&self) -> Result<Vec<BootstrapProgress>> {
        self.call(move |c, ctx| {
            let now = chrono::DateTime::parse_from_rfc3339(&ctx.now).ok();
            let mut st = c.prepare(
                "SELECT account, state, total, done, queued, started_at, finished_at, resumed_at, done_at_resume
                 FROM bootstrap ORDER BY account",
            )?;
            let rows = st.query_map([], |r| {
                let resumed: String = r.get(7)?;
                let (done, at_resume): (u32, u32) = (r.get(3)?, r.get(8)?);
                let end: Option<String> = r.get(6)?;
                let until = end.as_deref().and_then(|e| chrono::DateTime::parse_from_rfc3339(e).ok()).or(now);
                let secs = chrono::DateTime::parse_from_rfc3339(&resumed)
                    .ok()
                    .zip(until)
                    .map_or(0, |(a, b)| (b - a).num_milliseconds());
                let per_minute = if secs > 0 {
                    (done.saturating_sub(at_resume)) as f64 * 60_000.0 / secs as f64
                } else {
                    0.0
                };
                Ok(BootstrapProgress {
                    account: r.get(0)?,
                    state: r.get(1)?,
                    total: r.get(2)?,
                    done,
                    queued: r.get(4)?,
                    per_minute: (per_minute * 10.0).round() / 10.0,
                    started_at: r.get(5)?,
                    finished_at: end,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The lesson queue by state and class.
    pub async fn lesson_counts(&self) -> Result<LessonCounts> {
        self.call(move |c, _| {
            let mut st = c.prepare("SELECT class, state, COUNT(*) FROM learned GROUP BY class, state")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?)))?;
            let mut n = LessonCounts::default();
            for row in rows {
                let (class, state, count) = row?;
                match state.as_str() {
                    "pending" => n.pending += count,
                    "learned" => n.learned += count,
                    "skipped" => n.skipped += count,
                    _ => n.failed += count,
                }
                match class.as_str() {
                    "ham" => n.ham += count,
                    _ => n.spam += count,
                }
            }
            Ok(n)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use std::sync::Arc;

    fn open() -> (tempfile::TempDir, Store, TestClock) {
        let dir = tempfile::tempdir().unwrap();
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap().to_utc();
        let clock = TestClock::new(t0);
        let store = Store::open(&dir.path().join("db"), &[7; 32], Arc::new(clock.clone())).unwrap();
        (dir, store, clock)
    }

    fn item(mailbox: &str, uid: u32, class: Class) -> BootItem {
        BootItem {
            key: MessageKey {
                account: "a".into(),
                mailbox: mailbox.into(),
                uidvalidity: 1,
                uid,
            },
            class,
        }
    }

    fn learn(sha: &str) -> BootOutcome {
        BootOutcome::Learn {
            sha256: sha.into(),
            message_id: None,
            eml_path: "/x.eml".into(),
        }
    }

    #[tokio::test]
    async fn issue_17_bootstrap_items_are_handled_once_and_lessons_are_not_duplicated() {
        let (_d, store, clock) = open();
        assert_eq!(store.bootstrap_started("a").await.unwrap(), None);
        let items = vec![
            item("Junk", 1, Class::Spam),
            item("Junk", 2, Class::Spam),
            item("INBOX", 7, Class::Ham),
        ];
        store.begin_bootstrap("a", 30, items.clone(), "test".into()).await.unwrap();
        assert_eq!(store.bootstrap_started("a").await.unwrap(), Some(false));
        let pending = store.bootstrap_pending("a", 10).await.unwrap();
        assert_eq!(pending.len(), 3);
        assert!(store.finish_boot_item(&items[0], learn(&"1".repeat(64))).await.unwrap());
        assert!(
            !store.finish_boot_item(&items[0], learn(&"1".repeat(64))).await.unwrap(),
            "a replay after a crash"
        );
        assert!(
            !store.finish_boot_item(&items[1], learn(&"1".repeat(64))).await.unwrap(),
            "the same content twice in Junk: one lesson"
        );
        assert!(!store.finish_bootstrap("a").await.unwrap(), "one is still pending");
        clock.advance(chrono::Duration::seconds(30));
        store.finish_boot_item(&items[2], BootOutcome::Skip("gone".into())).await.unwrap();
        assert!(store.finish_bootstrap("a").await.unwrap());
        assert_eq!(store.bootstrap_started("a").await.unwrap(), Some(true));
        let p = store.bootstrap_progress().await.unwrap();
        assert_eq!((p[0].total, p[0].done, p[0].queued, p[0].state.as_str()), (3, 3, 1, "done"));
        assert!((p[0].per_minute - 6.0).abs() < 0.01, "3 in 30 s: {p:?}");
        let n = store.lesson_counts().await.unwrap();
        assert_eq!((n.pending, n.spam, n.ham), (1, 1, 0));
        assert_eq!(store.audit_rows(Some("a"), Some("bootstrap_done"), 10).await.unwrap().len(), 1);
        assert_eq!(store.audit_rows(Some("a"), Some("bootstrap_started"), 10).await.unwrap().len(), 1);
    }
}
