//! What the store already knows about a fetched message, in one trip to
//! the database (issue 21): a backlog asked four questions per message,
//! each a hop to the blocking pool and a turn at the connection's lock.

use super::learning::returned_from_in;
use super::messages::{handled_copy_in, status_in};
use super::operator::released_copy_in;
use super::{Result, Store};
use crate::domain::MessageKey;

/// The first of these that holds, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prior {
    /// This (account, mailbox, UIDVALIDITY, UID) has a row: a replayed
    /// FETCH after a reconnect.
    Recorded,
    /// The operator released a copy with this content (the record id).
    Released(i64),
    /// The user took it back out of a spam folder (where it was).
    Returned(String),
    /// Handled before a UIDVALIDITY change (the record id).
    Handled(i64),
    /// Nothing known: scan and decide.
    New,
}

impl Store {
    /// Whether the message has a row ([`Store::message_status`]), was
    /// released by the operator, was taken back out of a spam folder by
    /// the user ([`Store::returned_from`], only when `learn` is set) or was
    /// handled before a UIDVALIDITY change: one query after another on one
    /// held connection, stopping at the first that holds.
    pub async fn prior(&self, key: &MessageKey, sha256: &str, message_id: Option<&str>, learn: bool) -> Result<Prior> {
        let (key, sha, mid) = (key.clone(), sha256.to_string(), message_id.map(str::to_string));
        self.call(move |c, _| {
            if status_in(c, &key)?.is_some() {
                return Ok(Prior::Recorded);
            }
            if let Some(id) = released_copy_in(c, &key.account, &sha)? {
                return Ok(Prior::Released(id));
            }
            if learn && let Some(from) = returned_from_in(c, &key.account, &sha)? {
                return Ok(Prior::Returned(from));
            }
            Ok(match handled_copy_in(c, &key, &sha, mid.as_deref())? {
                Some(id) => Prior::Handled(id),
                None => Prior::New,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{SharedClock, TestClock};
    use crate::domain::Decision;
    use crate::store::{MessageMeta, NewMessage};
    use std::sync::Arc;

    fn key(uidvalidity: u32, uid: u32) -> MessageKey {
        MessageKey {
            account: "alice".into(),
            mailbox: "INBOX".into(),
            uidvalidity,
            uid,
        }
    }

    #[tokio::test]
    async fn one_trip_answers_replay_recognition_and_new() {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(TestClock::new("2026-12-03T10:00:00Z".parse().unwrap()));
        let s = Store::open(&dir.path().join("t.db"), &[7u8; 32], clock).unwrap();
        let meta = MessageMeta {
            message_id: Some("<m@x>".into()),
            sha256: "aa".into(),
            ..Default::default()
        };
        let id = s
            .record_decision_owned(NewMessage { key: key(1, 5), meta }, Decision::pass("clean"), None, false, None)
            .await
            .unwrap()
            .id;
        let prior = |k, sha: &'static str, mid: Option<&'static str>| {
            let s = s.clone();
            async move { s.prior(&k, sha, mid, true).await.unwrap() }
        };
        assert_eq!(prior(key(1, 5), "zz", None).await, Prior::Recorded, "a replayed FETCH");
        assert_eq!(
            prior(key(2, 1), "aa", None).await,
            Prior::Handled(id),
            "same content, new UIDVALIDITY"
        );
        assert_eq!(prior(key(2, 2), "bb", Some("<m@x>")).await, Prior::Handled(id), "same Message-ID");
        assert_eq!(prior(key(2, 3), "cc", Some("<other@x>")).await, Prior::New);
        assert_eq!(
            prior(key(1, 6), "aa", None).await,
            Prior::New,
            "a copy in the same generation is new mail"
        );
    }
}
