//! Mail Postern let through keeps no copy; the drawer still previews,
//! quarantines and learns it (issue 22) by reading it from the mailbox on
//! demand through the manager's login machinery. Only the message Postern
//! scanned is used: the UIDVALIDITY must match and the content hash must
//! be the one recorded, else the operator is told plainly why not.

use super::Runtime;
use super::quarantine::{OpError, OpResult};
use crate::domain::{Action, Event, MessageKey};
use crate::store::{ManualRefusal, MessageDetail};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a quarantine request waits for the runner before "queued".
const MOVE_WAIT: Duration = Duration::from_secs(20);

/// Whether the message can be read from its mailbox: not in quarantine,
/// not moved by Postern, not held by the milter.
pub fn fetchable(d: &MessageDetail) -> bool {
    let s = &d.summary;
    !s.quarantined
        && s.account != crate::store::MILTER_ACCOUNT
        && s.location.as_deref().is_none_or(|l| l == s.mailbox)
        && s.disposition.is_none()
}

impl Runtime {
    /// The raw message: the stored copy, else read from the mailbox.
    pub async fn message_source(&self, message: i64) -> Result<Vec<u8>, OpError> {
        let d = self.store.message_detail(message).await?.ok_or(OpError::NotFound)?;
        if d.eml_path.is_some() {
            return self.raw_copy(message).await;
        }
        self.fetch_live(&d).await
    }

    /// Whether the drawer may offer a live preview and actions.
    pub async fn can_fetch(&self, message: i64) -> Result<bool, OpError> {
        let d = self.store.message_detail(message).await?.ok_or(OpError::NotFound)?;
        Ok(d.eml_path.is_none() && fetchable(&d))
    }

    async fn fetch_live(&self, d: &MessageDetail) -> Result<Vec<u8>, OpError> {
        if !fetchable(d) {
            return Err(OpError::NoCopy);
        }
        let s = &d.summary;
        let acct = self
            .store
            .account(&s.account)
            .await?
            .ok_or_else(|| OpError::Refused(format!("the account {} no longer exists", s.account)))?;
        let key = MessageKey {
            account: s.account.clone(),
            mailbox: s.mailbox.clone(),
            uidvalidity: d.uidvalidity,
            uid: d.uid,
        };
        let raw = self.manager.peek(&acct, &key).await?;
        if hex::encode(Sha256::digest(&raw)) != d.sha256 {
            return Err(OpError::Refused(format!(
                "UID {} in {} now holds a different message than the one Postern scanned; nothing fetched",
                d.uid, s.mailbox
            )));
        }
        Ok(raw)
    }

    /// Quarantines a message Postern let through, on an operator's request:
    /// read it from the mailbox, keep its EML copy, then queue the move as
    /// an intent for the account's runner and wait a while for it.
    pub async fn quarantine_message(&self, message: i64, actor: &str) -> Result<OpResult, OpError> {
        let d = self.store.message_detail(message).await?.ok_or(OpError::NotFound)?;
        let account = d.summary.account.clone();
        if d.summary.quarantined {
            return Err(OpError::Refused("the message is already in quarantine".into()));
        }
        if self.shadow_accounts().await?.contains(&account) {
            return Err(OpError::Shadow);
        }
        let acct = self
            .store
            .account(&account)
            .await?
            .ok_or_else(|| OpError::Refused(format!("the account {account} no longer exists")))?;
        let path = match &d.eml_path {
            Some(p) => p.clone(),
            None => {
                let raw = self.fetch_live(&d).await?;
                self.manager
                    .deps()
                    .keep_copy(&account, &d.sha256, std::sync::Arc::new(raw))
                    .await
                    .map_err(|e| OpError::Io(format!("cannot keep an EML copy ({e}); not moved")))?
            }
        };
        let action = Action::Quarantine {
            folder: acct.quarantine_folder.clone(),
        };
        let intent = match self.store.request_manual_quarantine(message, &action, &path, actor).await? {
            Ok(id) => id,
            Err(ManualRefusal::NoMessage) => return Err(OpError::NotFound),
            Err(ManualRefusal::AlreadyQuarantined) => return Err(OpError::Refused("the message is already in quarantine".into())),
            Err(ManualRefusal::Moved) => {
                return Err(OpError::Refused(
                    "Postern moved this message elsewhere, or it was released or deleted; nothing to quarantine".into(),
                ));
            }
            Err(ManualRefusal::Busy) => return Err(OpError::Busy),
        };
        let _ = self.events.send(Event::Updated { id: message });
        let running = self.manager.nudge(&account);
        let deadline = tokio::time::Instant::now() + if running { MOVE_WAIT } else { Duration::ZERO };
        loop {
            if let Some((state, detail)) = self.store.intent_outcome(intent).await?
                && state != "pending"
            {
                return Ok(OpResult {
                    op: intent,
                    state: if state == "done" { "done" } else { "refused" },
                    detail: detail.unwrap_or_default(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                let why = if running {
                    "queued; the account's connection is busy or reconnecting"
                } else {
                    "queued; the account is not running, it will happen when it starts"
                };
                return Ok(OpResult {
                    op: intent,
                    state: "pending",
                    detail: why.into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
