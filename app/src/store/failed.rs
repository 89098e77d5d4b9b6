//! Actions that keep failing (issue 15, defect 3). An intent used to stay
//! `pending` for ever, retried every `POSTERN_ACTION_RETRY_SECS`. Now each
//! attempt the server refuses counts, and the last one allowed
//! (`POSTERN_ACTION_MAX_ATTEMPTS`) ends it `failed`, with an audit row; the
//! message shows as failed on the dashboard until the operator retries it
//! (pending again, attempts from zero) or dismisses it (closed, the message
//! left where it is).

use super::audit::{self, AuditEntry};
use super::{Result, Store};
use crate::domain::Intent;
use rusqlite::{OptionalExtension, params};

impl Store {
    /// Notes a failed attempt. Returns true when it was the last one
    /// allowed and the intent is now `failed`; otherwise it stays pending.
    pub async fn intent_attempt_failed(&self, intent: &Intent, error: &str, max_attempts: u32) -> Result<bool> {
        let (i, e) = (intent.clone(), error.to_string());
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let attempts: Option<u32> = tx
                .query_row(
                    "UPDATE intents SET attempts = attempts + 1, last_error = ?2, updated_at = ?3
                     WHERE id = ?1 AND state = 'pending' RETURNING attempts",
                    params![i.id, e, ctx.now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(attempts) = attempts.filter(|a| *a >= max_attempts) else {
                tx.commit()?;
                return Ok(false);
            };
            tx.execute("UPDATE intents SET state = 'failed' WHERE id = ?1", params![i.id])?;
            tx.execute(
                "UPDATE messages SET status = 'failed', updated_at = ?2 WHERE id = ?1",
                params![i.message, ctx.now],
            )?;
            let detail = format!(
                "{}: gave up after {attempts} attempts (retry or dismiss it on the dashboard); last error: {e}",
                i.action.name()
            );
            audit::insert(
                &tx,
                &ctx.now,
                &AuditEntry::message(&i.key, Some(i.message), "action_failed", detail),
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Notes an attempt cut short by the connection (lost, timed out). It
    /// does not count towards the cap: the move may have happened on the
    /// server before the answer was lost, which the next attempt finds out,
    /// and a failing connection is the account's problem (backoff, stuck
    /// folder), not this message's.
    pub async fn intent_interrupted(&self, intent: &Intent, error: &str) -> Result<()> {
        let (id, e) = (intent.id, error.to_string());
        self.call(move |c, ctx| {
            c.execute(
                "UPDATE intents SET last_error = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'pending'",
                params![id, e, ctx.now],
            )?;
            Ok(())
        })
        .await
    }

    /// The operator retries a failed action: pending again with a fresh
    /// count. Returns the account, or None when the message has no failed
    /// action.
    pub async fn retry_failed_intent(&self, message: i64, actor: &str) -> Result<Option<String>> {
        self.close_failed(message, actor, true).await
    }

    /// The operator dismisses a failed action: closed, nothing touched.
    /// Returns the account, or None when the message has no failed action.
    pub async fn dismiss_failed_intent(&self, message: i64, actor: &str) -> Result<Option<String>> {
        self.close_failed(message, actor, false).await
    }

    async fn close_failed(&self, message: i64, actor: &str, retry: bool) -> Result<Option<String>> {
        let actor = actor.to_string();
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let (state, status, event, detail) = if retry {
                ("pending", "decided", "action_retry", "failed action queued again by the operator")
            } else {
                (
                    "dismissed",
                    "done",
                    "action_dismissed",
                    "failed action dismissed by the operator; the message stays where it is",
                )
            };
            let changed = tx.execute(
                "UPDATE intents SET state = ?2, attempts = CASE WHEN ?2 = 'pending' THEN 0 ELSE attempts END,
                   updated_at = ?3 WHERE message = ?1 AND state = 'failed'",
                params![message, state, ctx.now],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            tx.execute(
                "UPDATE messages SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![message, status, ctx.now],
            )?;
            let (account, mailbox, uidvalidity, uid): (String, String, u32, u32) = tx.query_row(
                "SELECT account, mailbox, uidvalidity, uid FROM messages WHERE id = ?1",
                params![message],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let entry = AuditEntry {
                actor,
                account: Some(account.clone()),
                mailbox: Some(mailbox),
                uidvalidity: Some(uidvalidity),
                uid: Some(uid),
                message: Some(message),
                event: event.into(),
                detail: detail.into(),
            };
            audit::insert(&tx, &ctx.now, &entry)?;
            tx.commit()?;
            Ok(Some(account))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::domain::{Action, Decision, MessageKey};
    use crate::store::{MessageMeta, MessageStatus, NewMessage};
    use std::sync::Arc;

    async fn one_intent() -> (tempfile::TempDir, Store, Intent) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), &[7; 32], Arc::new(SystemClock)).unwrap();
        let m = NewMessage {
            key: MessageKey {
                account: "a".into(),
                mailbox: "INBOX".into(),
                uidvalidity: 7,
                uid: 1,
            },
            meta: MessageMeta {
                message_id: Some("m1@x".into()),
                sha256: format!("{:064}", 1),
                size: 10,
                ..Default::default()
            },
        };
        let action = Action::Quarantine { folder: "Q".into() };
        store
            .record_decision(&m, &Decision::pass("test"), Some(&action), false, None)
            .await
            .unwrap();
        let intent = store.pending_intents("a").await.unwrap().remove(0);
        (dir, store, intent)
    }

    async fn status(store: &Store, i: &Intent) -> Option<MessageStatus> {
        store.message_status(&i.key).await.unwrap().map(|(_, s)| s)
    }

    #[tokio::test]
    async fn issue_15_an_action_fails_for_good_after_the_cap_with_one_audit_row() {
        let (_dir, store, intent) = one_intent().await;
        for n in 1..3 {
            assert!(
                !store.intent_attempt_failed(&intent, "NO [TRYCREATE]", 3).await.unwrap(),
                "attempt {n}"
            );
            assert_eq!(store.pending_intents("a").await.unwrap().len(), 1, "still pending after {n}");
        }
        assert!(store.intent_attempt_failed(&intent, "NO [TRYCREATE]", 3).await.unwrap());
        assert!(store.pending_intents("a").await.unwrap().is_empty(), "no more retries");
        assert_eq!(status(&store, &intent).await, Some(MessageStatus::Failed));
        let audit = store.audit_rows(Some("a"), Some("action_failed"), 10).await.unwrap();
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert!(
            audit[0].detail.contains("after 3 attempts") && audit[0].detail.contains("TRYCREATE"),
            "{audit:?}"
        );
        // An interrupted attempt never closes an intent.
        let (_d2, other_store, other) = one_intent().await;
        for _ in 0..5 {
            other_store.intent_interrupted(&other, "connection lost").await.unwrap();
        }
        assert!(
            !other_store.intent_attempt_failed(&other, "NO", 3).await.unwrap(),
            "interruptions are not attempts"
        );
        // A late report about the closed intent changes nothing.
        assert!(!store.intent_attempt_failed(&intent, "late", 3).await.unwrap());
        assert_eq!(store.audit_rows(Some("a"), Some("action_failed"), 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn issue_15_the_operator_retries_or_dismisses_a_failed_action() {
        let (_dir, store, intent) = one_intent().await;
        assert_eq!(
            store.retry_failed_intent(intent.message, "admin:x").await.unwrap(),
            None,
            "not failed yet"
        );
        assert!(store.intent_attempt_failed(&intent, "boom", 1).await.unwrap());
        assert_eq!(
            store.retry_failed_intent(intent.message, "admin:x").await.unwrap().as_deref(),
            Some("a")
        );
        let again = store.pending_intents("a").await.unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 0), "pending with a fresh count");
        assert_eq!(status(&store, &intent).await, Some(MessageStatus::Decided));
        assert!(store.intent_attempt_failed(&intent, "boom again", 1).await.unwrap());
        assert_eq!(
            store.dismiss_failed_intent(intent.message, "admin:x").await.unwrap().as_deref(),
            Some("a")
        );
        assert!(store.pending_intents("a").await.unwrap().is_empty());
        assert_eq!(status(&store, &intent).await, Some(MessageStatus::Done));
        assert_eq!(
            store.dismiss_failed_intent(intent.message, "admin:x").await.unwrap(),
            None,
            "only once"
        );
        for event in ["action_retry", "action_dismissed"] {
            let rows = store.audit_rows(Some("a"), Some(event), 10).await.unwrap();
            assert_eq!(rows.len(), 1, "{event}: {rows:?}");
            assert_eq!(rows[0].actor, "admin:x");
        }
    }
}
