//! Learning from the user's Junk folder (issue 17). With
//! `learn_from_folders`, each account gets one more listener on its Junk
//! folder: the same UID engine (cursor, UIDVALIDITY re-sync, IDLE), never
//! flags. A message that appears there and that Postern did not move
//! there is the user's "this is spam": it is recorded as feedback and
//! queued for the Rspamd controller (the runtime's learning task sends it).

use super::backoff::Backoff;
use super::listener::{Listener, ListenerError, Role};
use super::status::{ListenerState, StatusCell};
use super::{Probe, login};
use crate::config::{AccountConfig, JunkFolder};
use crate::domain::MessageKey;
use crate::imap::{Fetched, ImapError, Selected};
use crate::scan::envelope;
use crate::scan::learn::Class;
use crate::store::UserFeedback;
use crate::worker::Deps;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// Finds the account's Junk folder, then watches it as a [`Role::Junk`]
/// listener.
pub(crate) struct JunkWatch {
    pub(crate) deps: Arc<Deps>,
    pub(crate) acct: Arc<AccountConfig>,
    pub(crate) status: StatusCell,
    pub(crate) actions: Arc<Notify>,
    pub(crate) probe: Option<Arc<dyn Probe>>,
}

impl JunkWatch {
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let span = info_span!("junk_learning", account = %self.acct.name);
        let t = &self.deps.tuning;
        let mut backoff = Backoff::new(t.backoff_min, t.backoff_max);
        let folder = loop {
            match self.resolve().instrument(span.clone()).await {
                Ok(Some(f)) => break f,
                Ok(None) => {
                    let reason = "no folder is marked \\Junk; set junk_folder to the folder users file spam into".to_string();
                    span.in_scope(|| warn!(%reason, "cannot learn from the Junk folder"));
                    self.status.set(ListenerState::Broken { reason });
                }
                Err(e) => {
                    span.in_scope(|| warn!(error = %e, "cannot find the Junk folder; retrying"));
                    self.status.update(|s| s.last_error = Some(e.to_string()));
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    self.status.set(ListenerState::Stopped);
                    return;
                }
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        };
        if self.acct.folders.iter().any(|w| w.eq_ignore_ascii_case(&folder)) {
            // A watched Junk folder is scanned like any other; its arrivals
            // cannot also be the user's verdict.
            span.in_scope(|| info!(%folder, "the Junk folder is a watched folder; not learning from it"));
            self.status.set(ListenerState::Stopped);
            return;
        }
        self.status.update(|s| s.mailbox = format!("{folder} (learning)"));
        let l = Listener {
            deps: self.deps,
            acct: self.acct,
            mailbox: folder,
            status: self.status,
            actions: self.actions,
            probe: self.probe,
            prepares: None,
            role: Role::Junk,
        };
        l.run(cancel).await;
    }

    /// The configured `junk_folder`, else the folder marked `\Junk`.
    async fn resolve(&self) -> Result<Option<String>, ListenerError> {
        if let JunkFolder::Folder(f) = &self.acct.junk_folder {
            return Ok(Some(f.clone()));
        }
        let mut conn = login::connect(&self.deps, &self.acct).await?;
        let found = conn.junk_mailbox().await;
        conn.logout().await;
        match found {
            Ok(f) => Ok(f),
            Err(ImapError::Refused { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Listener {
    /// One chunk of new UIDs in the Junk folder: every message the user
    /// filed there is recorded as spam feedback. Messages over the size
    /// limit are not fetched (nothing to learn from without the body).
    pub(super) async fn learn_chunk(&self, conn: &mut crate::imap::Conn, sel: &Selected, chunk: &[u32]) -> Result<(), ListenerError> {
        for msg in self.fetch_side_chunk(conn, sel, chunk, "Junk folder").await? {
            self.file_as_spam(sel, &msg).await?;
        }
        Ok(())
    }

    /// The bodies of a chunk of a side folder (Junk, report) in UID order,
    /// for the roles that read a message once and never act on it. UIDs
    /// over the size limit, or gone, are left out; a body the server sends
    /// larger than it declared leaves the whole chunk out rather than
    /// retry it forever.
    pub(super) async fn fetch_side_chunk(
        &self,
        conn: &mut crate::imap::Conn,
        sel: &Selected,
        chunk: &[u32],
        folder: &str,
    ) -> Result<Vec<Fetched>, ListenerError> {
        let limit = self.deps.tuning.max_message_bytes;
        let sizes = conn.fetch_sizes(chunk).await?;
        let wanted: Vec<u32> = chunk
            .iter()
            .copied()
            .filter(|u| sizes.iter().any(|(s, n)| s == u && *n <= limit))
            .collect();
        if wanted.len() < chunk.len() {
            info!(
                skipped = chunk.len() - wanted.len(),
                folder, "messages over the size limit or gone are not read"
            );
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut bodies = match conn.fetch_bodies(&wanted).await {
            Ok(b) => b,
            Err(ImapError::LiteralTooLarge(r)) => {
                warn!(error = %r, folder, "a body over the limit; this chunk is not read");
                self.reopen(conn, sel).await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::with_capacity(wanted.len());
        for uid in wanted {
            let Some(i) = bodies.iter().position(|f| f.uid == uid) else {
                return Err(ImapError::Protocol(format!("FETCH never returned UID {uid} of the {folder}")).into());
            };
            out.push(bodies.swap_remove(i));
        }
        Ok(out)
    }

    async fn file_as_spam(&self, sel: &Selected, msg: &Fetched) -> Result<(), ListenerError> {
        let store = &self.deps.store;
        let sha256 = hex::encode(Sha256::digest(msg.raw.as_slice()));
        if store.postern_moved(&self.acct.name, &sha256).await? {
            info!(uid = msg.uid, "moved here by Postern; not the user's opinion, not learned");
            return Ok(());
        }
        let eml_path = self.deps.keep_copy(&self.acct.name, &sha256, msg.raw.clone()).await?;
        let f = UserFeedback {
            key: MessageKey {
                account: self.acct.name.clone(),
                mailbox: self.mailbox.clone(),
                uidvalidity: sel.uidvalidity,
                uid: msg.uid,
            },
            sha256,
            message_id: envelope(&msg.raw).message_id,
            class: Class::Spam,
            source: format!("moved into {} by the user", self.mailbox),
            eml_path,
        };
        if store.record_user_spam(f).await? {
            info!(uid = msg.uid, "the user filed it as spam; queued for learning");
            self.status.update(|s| s.processed += 1);
        }
        Ok(())
    }
}
