//! After every IDLE wake, renewal or poll the listener makes sure the folder
//! it sits in is still the folder it selected (issue 15, defect 1). A folder
//! deleted and recreated by another client is not always announced to the
//! old session: Cyrus sends only `* 1 EXPUNGE`, Courier keeps serving the
//! new folder under the old UIDVALIDITY. Catching up by UID in such a
//! session would skip the new folder's low UIDs and record its high ones
//! under the old UIDVALIDITY, so the check runs before every catch-up.

use super::listener::{Listener, ListenerError};
use crate::imap::{Conn, ImapError, Selected};
use crate::store::MailboxState;
use tracing::{info, warn};

impl Listener {
    /// Asks the server for the folder's UIDVALIDITY (a `[UIDVALIDITY]` code
    /// already received counts as the answer) and, when it differs, when
    /// the folder was `[CLOSED]`, or when STATUS cannot tell, selects the
    /// folder again. A new UIDVALIDITY takes the same path as one found at
    /// connect time ([`Listener::sync_state`]: churn bound, reset, re-sync).
    ///
    /// With `reselect` (after an IDLE renewal or a poll) it selects again
    /// without asking STATUS first: a server may answer STATUS for the
    /// selected folder from the session's own, stale view, and a fresh
    /// SELECT once per renewal bounds how long that can hide a new folder.
    pub(super) async fn recheck_folder(
        &self,
        conn: &mut Conn,
        sel: &mut Selected,
        state: &mut MailboxState,
        reselect: bool,
    ) -> Result<(), ListenerError> {
        let signals = conn.take_signals();
        let seen = match signals.uidvalidity {
            Some(v) => Some(v),
            None if signals.closed || reselect => None,
            None => match conn.status(&self.mailbox).await {
                Ok(st) => st.uidvalidity,
                // The folder is gone, or STATUS on the selected folder is
                // refused: SELECT tells which.
                Err(ImapError::Refused { .. }) => None,
                Err(e) => return Err(e.into()),
            },
        };
        if seen == Some(sel.uidvalidity) && !signals.closed {
            return Ok(());
        }
        info!(
            ?seen,
            current = sel.uidvalidity,
            ?signals,
            "folder may have been replaced; selecting it again"
        );
        // Refused (the folder was deleted and not yet recreated): the
        // listener reconnects with backoff until it is back.
        let again = conn.select(&self.mailbox).await?;
        if again.uidvalidity == sel.uidvalidity {
            if let Some(v) = seen.filter(|v| *v != sel.uidvalidity) {
                // STATUS saw the new folder, this session still serves the old
                // generation: only a fresh session can be trusted.
                return Err(ImapError::Protocol(format!(
                    "STATUS reports UIDVALIDITY {v} but the session still serves {}; reconnecting",
                    sel.uidvalidity
                ))
                .into());
            }
            self.refuse_reused_uids(state, &again).await?;
            *sel = again;
            return Ok(());
        }
        warn!(old = sel.uidvalidity, new = again.uidvalidity, "folder replaced while connected");
        *state = self.sync_state(conn, &again).await?;
        *sel = again;
        Ok(())
    }
}
