//! Operator actions on stored messages: release and delete go through the
//! account's runner (one connection, durable op rows); rescan uses the stored
//! EML copy; learn uses it, or reads mail let through (never its flags).

use super::{Runtime, RuntimeError};
use crate::domain::{Decision, Event};
use crate::scan::learn::{self, Class, LearnError, Taught};
use crate::store::{AuditEntry, OpKind, OpRefusal, OpState};
use std::time::Duration;

/// How long a request waits for the runner before reporting "queued".
const OP_WAIT: Duration = Duration::from_secs(20);

/// Why an operator action did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// No such message.
    #[error("no such message")]
    NotFound,
    /// Not in quarantine (already released or deleted, or never moved).
    #[error("the message is not in quarantine")]
    NotQuarantined,
    /// The account is in shadow mode: Postern never acts on its mailbox,
    /// not even on an operator's request (switch it to enforce first).
    #[error("the account is in shadow mode: Postern never acts on its mailbox; switch it to enforce to release or delete")]
    Shadow,
    /// The message has no failed action to retry or dismiss.
    #[error("the message has no failed action")]
    NotFailed,
    /// Another action on it is still running.
    #[error("another action on this message is still running")]
    Busy,
    /// Postern kept no copy of this message.
    #[error("no stored copy of this message")]
    NoCopy,
    /// The stored copy could not be read.
    #[error("cannot read the stored copy: {0}")]
    Io(String),
    /// The message could not be read from its mailbox (plain language).
    #[error(transparent)]
    Fetch(#[from] super::PeekError),
    /// Refused for a reason the operator can read.
    #[error("{0}")]
    Refused(String),
    /// Rspamd learning failed.
    #[error(transparent)]
    Learn(#[from] LearnError),
    /// Something below failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl From<crate::store::StoreError> for OpError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Runtime(e.into())
    }
}

/// The outcome of a release or delete.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpResult {
    /// Op id.
    pub op: i64,
    /// pending (still queued) | done | gone | refused.
    pub state: &'static str,
    /// What happened.
    pub detail: String,
}

impl Runtime {
    /// Queues a release or delete, wakes the account's runner and waits a
    /// while for the outcome. A request that outlives the wait stays queued
    /// and is carried out when the account is reachable again.
    pub async fn request_op(&self, message: i64, kind: OpKind, actor: &str) -> Result<OpResult, OpError> {
        let account = self.store.message_summary(message).await?.ok_or(OpError::NotFound)?.account;
        if account == crate::store::MILTER_ACCOUNT {
            // Held in Postfix's queue, not in a mailbox: postsuper, not a runner.
            return self.milter_op(message, kind, actor).await;
        }
        if self.shadow_accounts().await?.contains(&account) {
            return Err(OpError::Shadow);
        }
        let op = match self.store.request_op(message, kind, actor).await? {
            Ok(id) => id,
            Err(OpRefusal::NoMessage) => return Err(OpError::NotFound),
            Err(OpRefusal::NotQuarantined) => return Err(OpError::NotQuarantined),
            Err(OpRefusal::Busy) => return Err(OpError::Busy),
        };
        let running = self.manager.nudge(&account);
        let deadline = tokio::time::Instant::now() + if running { OP_WAIT } else { Duration::ZERO };
        loop {
            if let Some((state, detail)) = self.store.op_state(op).await?
                && state != OpState::Pending
            {
                return Ok(OpResult {
                    op,
                    state: state.as_str(),
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
                    op,
                    state: "pending",
                    detail: why.into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The stored EML copy of a message.
    pub async fn raw_copy(&self, message: i64) -> Result<Vec<u8>, OpError> {
        let d = self.store.message_detail(message).await?.ok_or(OpError::NotFound)?;
        let path = d.eml_path.ok_or(OpError::NoCopy)?;
        tokio::fs::read(&path).await.map_err(|e| OpError::Io(e.to_string()))
    }

    /// Scans the stored copy again with the current pipeline and records
    /// the new verdict. Nothing moves: releasing stays the operator's call.
    pub async fn rescan(&self, message: i64, actor: &str) -> Result<Decision, OpError> {
        let raw = self.raw_copy(message).await?;
        let decision = self.live.current().scan(raw).await;
        self.store.record_rescan(message, &decision, actor).await?;
        let _ = self.events.send(Event::Updated { id: message });
        Ok(decision)
    }

    /// Teaches Rspamd's classifier with the stored copy.
    pub async fn learn(&self, message: i64, class: Class, actor: &str) -> Result<String, OpError> {
        // Mail let through has no copy: it is read from the mailbox.
        let raw = self.message_source(message).await?;
        let (url, pass) = (self.controller_url().await?, self.rspamd_password().await?);
        let result = learn::teach(url.as_deref(), pass.as_deref(), raw, class).await;
        let d = self.store.message_detail(message).await?.ok_or(OpError::NotFound)?;
        let key = crate::domain::MessageKey {
            account: d.summary.account.clone(),
            mailbox: d.summary.mailbox.clone(),
            uidvalidity: d.uidvalidity,
            uid: d.uid,
        };
        // A declined lesson (Rspamd's 204) is not recorded as learned.
        let (event, detail) = match (&result, class) {
            (Ok(Taught::Learned(m)), Class::Spam) => ("learned_spam", m.clone()),
            (Ok(Taught::Learned(m)), Class::Ham) => ("learned_ham", m.clone()),
            (Ok(Taught::Skipped(m)), _) => ("learn_skipped", m.clone()),
            (Err(e), _) => ("learn_failed", e.to_string()),
        };
        let mut e = AuditEntry::message(&key, Some(message), event, detail);
        e.actor = actor.to_string();
        self.store.audit(e).await?;
        let _ = self.events.send(Event::Updated { id: message });
        Ok(match result? {
            Taught::Learned(m) | Taught::Skipped(m) => m,
        })
    }
}
