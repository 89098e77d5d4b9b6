//! Reading one message on demand (issue 22): flagged and passed mail keeps
//! no copy, so the drawer's preview, a manual quarantine and a lesson for
//! Rspamd fetch it from the mailbox when asked. The account's own login
//! machinery is used (password or OAuth2, the shared login limit); the
//! body is read with `BODY.PEEK[]`, so flags never change, and only after
//! its size is known to be within the limit.

use super::{ManagerHandle, login};
use crate::config::AccountConfig;
use crate::domain::MessageKey;
use crate::imap::ImapError;

/// Why a message could not be read from its mailbox (plain language).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeekError {
    /// The folder was recreated or reset: UIDs of the old generation mean
    /// nothing now.
    #[error(
        "the folder {mailbox} was reset on the server (UIDVALIDITY is now {now}, was {was}); the message cannot be found by its UID any more"
    )]
    UidValidityChanged {
        /// Folder.
        mailbox: String,
        /// UIDVALIDITY now.
        now: u32,
        /// UIDVALIDITY when Postern saw it.
        was: u32,
    },
    /// Moved or deleted since.
    #[error("UID {uid} is no longer in {mailbox}: the message was moved or deleted in the mailbox")]
    Gone {
        /// Folder.
        mailbox: String,
        /// UID.
        uid: u32,
    },
    /// The folder itself is gone.
    #[error("the folder {mailbox} cannot be opened: {detail}")]
    NoMailbox {
        /// Folder.
        mailbox: String,
        /// The server's words.
        detail: String,
    },
    /// Larger than Postern reads.
    #[error("the message is {size} bytes, over the {limit}-byte limit; it is not fetched")]
    TooLarge {
        /// Its size.
        size: u32,
        /// The limit.
        limit: u32,
    },
    /// Login or transport failed.
    #[error("cannot reach the mailbox: {0}")]
    Unreachable(String),
}

impl From<ImapError> for PeekError {
    fn from(e: ImapError) -> Self {
        Self::Unreachable(e.plain())
    }
}

impl ManagerHandle {
    /// Fetches the message at `key` from `acct`'s server with `BODY.PEEK[]`,
    /// over a connection of its own (the runner's stays free for actions).
    pub async fn peek(&self, acct: &AccountConfig, key: &MessageKey) -> Result<Vec<u8>, PeekError> {
        let deps = self.deps();
        let mut conn = login::connect(deps, acct)
            .await
            .map_err(|e| PeekError::Unreachable(e.to_string()))?;
        let out = read_one(&mut conn, key, deps.tuning.max_message_bytes).await;
        conn.logout().await;
        out
    }
}

async fn read_one(conn: &mut crate::imap::Conn, key: &MessageKey, limit: u32) -> Result<Vec<u8>, PeekError> {
    let sel = match conn.select(&key.mailbox).await {
        Ok(s) => s,
        Err(ImapError::Refused { detail, .. }) => {
            return Err(PeekError::NoMailbox {
                mailbox: key.mailbox.clone(),
                detail,
            });
        }
        Err(e) => return Err(e.into()),
    };
    if sel.uidvalidity != key.uidvalidity {
        return Err(PeekError::UidValidityChanged {
            mailbox: key.mailbox.clone(),
            now: sel.uidvalidity,
            was: key.uidvalidity,
        });
    }
    let gone = || PeekError::Gone {
        mailbox: key.mailbox.clone(),
        uid: key.uid,
    };
    let size = conn
        .fetch_sizes(&[key.uid])
        .await?
        .into_iter()
        .find(|(u, _)| *u == key.uid)
        .map(|(_, n)| n)
        .ok_or_else(gone)?;
    if size > limit {
        return Err(PeekError::TooLarge { size, limit });
    }
    match conn.fetch_bodies(&[key.uid]).await {
        Ok(bodies) => bodies
            .into_iter()
            .find(|f| f.uid == key.uid)
            .map(|f| std::sync::Arc::unwrap_or_clone(f.raw))
            .ok_or_else(gone),
        Err(ImapError::LiteralTooLarge(_)) => Err(PeekError::TooLarge { size, limit }),
        Err(e) => Err(e.into()),
    }
}
