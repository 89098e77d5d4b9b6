//! What users teach by filing mail (issue 17): one `feedback` row per user
//! action, one `learned` row per lesson for Rspamd. A lesson is keyed on the
//! message's SHA-256 and class, so the same message is never learned twice,
//! whoever filed it and however often its folder was re-synced.

use super::audit::{self, AuditEntry};
use super::messages::{NewMessage, insert_message};
use super::sync::advance;
use super::{Result, Store};
use crate::domain::MessageKey;
use crate::scan::learn::{Class, Taught};
use rusqlite::{OptionalExtension, params};

/// A user's action on one message, as the folder listener saw it.
#[derive(Debug, Clone)]
pub struct UserFeedback {
    /// Where the user put the message (folder, UIDVALIDITY, UID).
    pub key: MessageKey,
    /// SHA-256 of the raw message.
    pub sha256: String,
    /// Its Message-ID, if any.
    pub message_id: Option<String>,
    /// What the user said it is.
    pub class: Class,
    /// What the user did, for the audit log (`moved into Junk`).
    pub source: String,
    /// The stored copy Rspamd learns from.
    pub eml_path: String,
}

/// One lesson for Rspamd.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lesson {
    /// SHA-256 of the message.
    pub sha256: String,
    /// `spam` or `ham`.
    pub class: String,
    /// The copy to send.
    pub eml_path: String,
    /// pending | learned | skipped | failed.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The account whose user filed it first.
    pub account: String,
    /// Rspamd's answer or the last error.
    pub detail: Option<String>,
}

/// The audit actor for a user's own action.
pub fn user_actor(account: &str) -> String {
    format!("user:{account}")
}

/// Inserts the feedback row, its audit row and (once per SHA-256 and class)
/// the pending lesson. Returns false when this exact UID was seen before.
fn insert_feedback(tx: &rusqlite::Transaction<'_>, now: &str, f: &UserFeedback, message: Option<i64>) -> rusqlite::Result<bool> {
    let k = &f.key;
    // The same message in the same folder under a new UIDVALIDITY (a
    // re-synced folder) is not a new opinion.
    let seen: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM feedback WHERE account = ?1 AND mailbox = ?2 AND sha256 = ?3 AND class = ?4)",
        params![k.account, k.mailbox, f.sha256, f.class.as_str()],
        |r| r.get(0),
    )?;
    if seen {
        return Ok(false);
    }
    let fresh = tx.execute(
        "INSERT OR IGNORE INTO feedback (account, mailbox, uidvalidity, uid, sha256, message_id, class, source, message, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            k.account,
            k.mailbox,
            k.uidvalidity,
            k.uid,
            f.sha256,
            f.message_id,
            f.class.as_str(),
            f.source,
            message,
            now
        ],
    )? == 1;
    if !fresh {
        return Ok(false);
    }
    let queued = tx.execute(
        "INSERT OR IGNORE INTO learned (sha256, class, eml_path, state, next_at, account, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?4, ?4)",
        params![f.sha256, f.class.as_str(), f.eml_path, now, k.account],
    )? == 1;
    let mut e = AuditEntry::message(
        k,
        message,
        &format!("user_marked_{}", f.class.as_str()),
        format!(
            "{}; {}",
            f.source,
            if queued {
                "queued for Rspamd learning"
            } else {
                "already learned or queued with this class; not learned twice"
            }
        ),
    );
    e.actor = user_actor(&k.account);
    audit::insert(tx, now, &e)?;
    Ok(true)
}

impl Store {
    /// Whether Postern itself moved (or is about to move) this message out
    /// of a watched folder: such a copy in Junk is Postern's opinion, never
    /// the user's.
    pub async fn postern_moved(&self, account: &str, sha256: &str) -> Result<bool> {
        let (a, s) = (account.to_string(), sha256.to_string());
        self.call(move |c, _| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM messages m WHERE m.account = ?1 AND m.sha256 = ?2 AND (m.quarantined = 1
                   OR (m.eml_path IS NOT NULL AND EXISTS (SELECT 1 FROM intents i WHERE i.message = m.id AND i.state IN ('pending', 'done')))))",
                params![a, s],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Where a message arriving in a watched folder comes back from, when
    /// it was last known in Junk or Quarantine: moved there by the user
    /// (spam feedback) or by Postern (a moving verdict or a claw-back).
    pub async fn returned_from(&self, account: &str, sha256: &str) -> Result<Option<String>> {
        let (a, s) = (account.to_string(), sha256.to_string());
        self.call(move |c, _| returned_from_in(c, &a, &s)).await
    }

    /// Records a message the user filed into Junk. Returns false when this
    /// UID was recorded before (a replay after a reconnect).
    pub async fn record_user_spam(&self, f: UserFeedback) -> Result<bool> {
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let message: Option<i64> = tx
                .query_row(
                    "SELECT id FROM messages WHERE account = ?1 AND sha256 = ?2 ORDER BY id DESC LIMIT 1",
                    params![f.key.account, f.sha256],
                    |r| r.get(0),
                )
                .optional()?;
            let fresh = insert_feedback(&tx, &ctx.now, &f, message)?;
            tx.commit()?;
            Ok(fresh)
        })
        .await
    }

    /// Records a message the user moved back out of Junk or Quarantine into
    /// a watched folder: the message row (known, not scanned again, so it
    /// is not moved straight back), the cursor, and the ham lesson, in one
    /// transaction.
    pub async fn record_user_returned(&self, m: &NewMessage, from: &str, eml_path: String) -> Result<i64> {
        let (m, from) = (m.clone(), from.to_string());
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let id = insert_message(&tx, &ctx.now, &m, "known", None, false, None)?;
            advance(&tx, &ctx.now, &m.key, None)?;
            let f = UserFeedback {
                key: m.key.clone(),
                sha256: m.meta.sha256.clone(),
                message_id: m.meta.message_id.clone(),
                class: Class::Ham,
                source: format!("moved back from {from} into {}", m.key.mailbox),
                eml_path,
            };
            insert_feedback(&tx, &ctx.now, &f, Some(id))?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// Pending lessons whose next attempt is due, oldest first.
    pub async fn due_lessons(&self, limit: u32) -> Result<Vec<Lesson>> {
        self.call(move |c, ctx| {
            let mut st = c.prepare(
                "SELECT sha256, class, eml_path, state, attempts, account, detail FROM learned
                 WHERE state = 'pending' AND next_at <= ?1 ORDER BY created_at LIMIT ?2",
            )?;
            let rows = st.query_map(params![ctx.now, limit], lesson)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Every lesson, newest first (dashboard, `/health`, tests).
    pub async fn lessons(&self, limit: u32) -> Result<Vec<Lesson>> {
        self.call(move |c, _| {
            let mut st = c.prepare(
                "SELECT sha256, class, eml_path, state, attempts, account, detail FROM learned ORDER BY created_at DESC LIMIT ?1",
            )?;
            let rows = st.query_map(params![limit], lesson)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Records the outcome of one attempt. A failure is retried at
    /// `retry_at` until `max_attempts`, then the lesson is given up
    /// (`failed`); both ends get an audit row.
    pub async fn finish_lesson(
        &self,
        l: &Lesson,
        outcome: std::result::Result<Taught, String>,
        retry_at: String,
        max_attempts: u32,
    ) -> Result<()> {
        let l = l.clone();
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let attempts = l.attempts + 1;
            let (state, detail, event) = match &outcome {
                Ok(Taught::Learned(d)) => ("learned", d.clone(), Some(format!("user_learned_{}", l.class))),
                Ok(Taught::Skipped(d)) => ("skipped", d.clone(), Some("learn_skipped".to_string())),
                Err(e) if attempts >= max_attempts => ("failed", e.clone(), Some("learn_failed".to_string())),
                Err(e) => ("pending", e.clone(), None),
            };
            tx.execute(
                "UPDATE learned SET state = ?3, attempts = ?4, detail = ?5, next_at = ?6, updated_at = ?7
                 WHERE sha256 = ?1 AND class = ?2 AND state = 'pending'",
                params![l.sha256, l.class, state, attempts, detail, retry_at, ctx.now],
            )?;
            if let Some(event) = event {
                let e = AuditEntry {
                    actor: "postern".into(),
                    account: Some(l.account.clone()),
                    event,
                    detail: format!("{} {}: {detail}", l.class, &l.sha256[..l.sha256.len().min(12)]),
                    ..Default::default()
                };
                audit::insert(&tx, &ctx.now, &e)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

fn lesson(r: &rusqlite::Row<'_>) -> rusqlite::Result<Lesson> {
    Ok(Lesson {
        sha256: r.get(0)?,
        class: r.get(1)?,
        eml_path: r.get(2)?,
        state: r.get(3)?,
        attempts: r.get(4)?,
        account: r.get(5)?,
        detail: r.get(6)?,
    })
}

/// [`Store::returned_from`] on a connection already held.
pub(super) fn returned_from_in(c: &rusqlite::Connection, account: &str, sha256: &str) -> Result<Option<String>> {
    let user: Option<String> = c
        .query_row(
            "SELECT mailbox FROM feedback WHERE account = ?1 AND sha256 = ?2 AND class = 'spam' ORDER BY id DESC LIMIT 1",
            params![account, sha256],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(m) = user {
        return Ok(Some(format!("{m} (filed there by the user)")));
    }
    Ok(c.query_row(
        "SELECT COALESCE(location_mailbox, '?') FROM messages WHERE account = ?1 AND sha256 = ?2 AND quarantined = 1
         ORDER BY id DESC LIMIT 1",
        params![account, sha256],
        |r| r.get::<_, String>(0),
    )
    .optional()?
    .map(|m| format!("{m} (moved there by Postern)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, TestClock};
    use crate::domain::{Action, Decision};
    use crate::store::MessageMeta;
    use std::sync::Arc;

    fn key(account: &str, mailbox: &str, uidvalidity: u32, uid: u32) -> MessageKey {
        MessageKey {
            account: account.into(),
            mailbox: mailbox.into(),
            uidvalidity,
            uid,
        }
    }

    fn spam(k: MessageKey, sha: &str) -> UserFeedback {
        UserFeedback {
            key: k,
            sha256: sha.into(),
            message_id: Some("m@x".into()),
            class: Class::Spam,
            source: "moved into Junk by the user".into(),
            eml_path: "/x.eml".into(),
        }
    }

    fn open() -> (tempfile::TempDir, Store, TestClock) {
        let dir = tempfile::tempdir().unwrap();
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").unwrap().to_utc();
        let clock = TestClock::new(t0);
        let store = Store::open(&dir.path().join("db"), &[7; 32], Arc::new(clock.clone())).unwrap();
        (dir, store, clock)
    }

    #[tokio::test]
    async fn issue_17_a_message_is_learned_once_whoever_files_it_and_however_often() {
        let (_d, store, _c) = open();
        let sha = "a".repeat(64);
        assert!(store.record_user_spam(spam(key("a", "Junk", 1, 5), &sha)).await.unwrap());
        assert!(
            !store.record_user_spam(spam(key("a", "Junk", 1, 5), &sha)).await.unwrap(),
            "a replayed FETCH"
        );
        assert!(
            !store.record_user_spam(spam(key("a", "Junk", 2, 1), &sha)).await.unwrap(),
            "the same Junk folder re-synced under a new UIDVALIDITY"
        );
        assert!(
            store.record_user_spam(spam(key("b", "Junk", 1, 9), &sha)).await.unwrap(),
            "another user's opinion is recorded"
        );
        let lessons = store.lessons(10).await.unwrap();
        assert_eq!(lessons.len(), 1, "but learned once: {lessons:?}");
        assert_eq!((lessons[0].class.as_str(), lessons[0].account.as_str()), ("spam", "a"));
        let marked = store.audit_rows(None, Some("user_marked_spam"), 10).await.unwrap();
        assert_eq!(marked.len(), 2);
        assert!(marked.iter().all(|r| r.actor.starts_with("user:")));
        assert!(marked[0].detail.contains("not learned twice"), "{}", marked[0].detail);
    }

    #[tokio::test]
    async fn issue_17_failed_lessons_are_retried_then_given_up_and_skips_are_final() {
        let (_d, store, clock) = open();
        store.record_user_spam(spam(key("a", "Junk", 1, 1), &"b".repeat(64))).await.unwrap();
        store.record_user_spam(spam(key("a", "Junk", 1, 2), &"c".repeat(64))).await.unwrap();
        let later = (clock.now() + chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let due = store.due_lessons(10).await.unwrap();
        assert_eq!(due.len(), 2);
        store
            .finish_lesson(&due[0], Err("connection refused".into()), later.clone(), 2)
            .await
            .unwrap();
        store
            .finish_lesson(&due[1], Ok(Taught::Skipped("too few words".into())), later.clone(), 2)
            .await
            .unwrap();
        assert!(store.due_lessons(10).await.unwrap().is_empty(), "the retry waits for its time");
        clock.advance(chrono::Duration::minutes(1));
        let again = store.due_lessons(10).await.unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 1), "only the failed one comes back");
        store.finish_lesson(&again[0], Err("still down".into()), later, 2).await.unwrap();
        let states: Vec<String> = store.lessons(10).await.unwrap().into_iter().map(|l| l.state).collect();
        assert!(
            states.contains(&"failed".into()) && states.contains(&"skipped".into()),
            "{states:?}"
        );
        assert_eq!(store.audit_rows(None, Some("learn_failed"), 10).await.unwrap().len(), 1);
        assert_eq!(store.audit_rows(None, Some("learn_skipped"), 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn issue_17_only_moves_postern_planned_are_postern_s_opinion() {
        let (_d, store, _c) = open();
        let m = |uid: u32, sha: &str| NewMessage {
            key: key("a", "INBOX", 1, uid),
            meta: MessageMeta {
                sha256: sha.into(),
                size: 10,
                ..Default::default()
            },
        };
        let (junked, flagged, passed) = ("1".repeat(64), "2".repeat(64), "3".repeat(64));
        let d = Decision::pass("x");
        let junk = Action::Junk {
            folder: Some("Junk".into()),
        };
        let flag = Action::Flag {
            keyword: "$Phishing".into(),
        };
        store
            .record_decision(&m(1, &junked), &d, Some(&junk), false, Some("/j.eml".into()))
            .await
            .unwrap();
        store.record_decision(&m(2, &flagged), &d, Some(&flag), false, None).await.unwrap();
        store.record_decision(&m(3, &passed), &d, None, false, None).await.unwrap();
        assert!(store.postern_moved("a", &junked).await.unwrap(), "a pending junk move");
        assert!(!store.postern_moved("a", &flagged).await.unwrap(), "a flag leaves it in place");
        assert!(!store.postern_moved("a", &passed).await.unwrap());
        assert!(!store.postern_moved("b", &junked).await.unwrap(), "per account");
        assert_eq!(store.returned_from("a", &passed).await.unwrap(), None);
        store.record_user_spam(spam(key("a", "Junk", 1, 1), &passed)).await.unwrap();
        assert_eq!(
            store.returned_from("a", &passed).await.unwrap().as_deref(),
            Some("Junk (filed there by the user)")
        );
    }
}
