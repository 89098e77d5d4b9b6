//! The operator's answer to an action that failed every attempt (issue 15,
//! defect 3): retry it, or dismiss it. The web layer calls these verbs and
//! nothing below them.

use super::Runtime;
use super::quarantine::{OpError, OpResult};
use crate::domain::Event;

impl Runtime {
    /// Queues a failed action again with a fresh attempt count and wakes
    /// the account's runner. The outcome shows on the message as usual.
    pub async fn retry_failed_action(&self, message: i64, actor: &str) -> Result<OpResult, OpError> {
        let account = self.store.message_summary(message).await?.ok_or(OpError::NotFound)?.account;
        if self.shadow_accounts().await?.contains(&account) {
            return Err(OpError::Shadow);
        }
        self.store.retry_failed_intent(message, actor).await?.ok_or(OpError::NotFailed)?;
        let running = self.manager.nudge(&account);
        let _ = self.events.send(Event::Updated { id: message });
        Ok(OpResult {
            op: message,
            state: "pending",
            detail: if running {
                "queued again; the account's runner is on it".into()
            } else {
                "queued again; the account is not running, it will run when it starts".into()
            },
        })
    }

    /// Closes a failed action without acting: the message stays where it is.
    pub async fn dismiss_failed_action(&self, message: i64, actor: &str) -> Result<OpResult, OpError> {
        self.store.message_summary(message).await?.ok_or(OpError::NotFound)?;
        self.store.dismiss_failed_intent(message, actor).await?.ok_or(OpError::NotFailed)?;
        let _ = self.events.send(Event::Updated { id: message });
        Ok(OpResult {
            op: message,
            state: "dismissed",
            detail: "the message stays where it is".into(),
        })
    }
}
