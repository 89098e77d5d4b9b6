//! Reported phishing (issue 17, item 3). An account with a
//! `report_folder` gets one more listener on it: the same UID engine
//! (cursor, UIDVALIDITY re-sync, IDLE), never flags. A message that appears
//! there is the user's "this is phishing": it is re-scanned with every
//! engine and recorded as a report for the operator's queue (the runtime's
//! report task notifies, and confirms above the configured score). Nothing
//! here moves mail; a rejected report goes back through
//! [`super::ManagerHandle::return_report`].

use super::ManagerHandle;
use super::backoff::Backoff;
use super::listener::{Listener, ListenerError, Role};
use super::status::{ListenerState, StatusCell};
use super::{Probe, login};
use crate::config::AccountConfig;
use crate::domain::MessageKey;
use crate::imap::{Fetched, ImapError, Selected};
use crate::scan::{ScanRequest, envelope};
use crate::store::NewReport;
use crate::worker::Deps;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// Makes sure the account's report folder exists (users need it to drop
/// mail into), then watches it as a [`Role::Report`] listener.
pub(crate) struct ReportWatch {
    pub(crate) deps: Arc<Deps>,
    pub(crate) acct: Arc<AccountConfig>,
    pub(crate) folder: String,
    pub(crate) status: StatusCell,
    pub(crate) actions: Arc<Notify>,
    pub(crate) probe: Option<Arc<dyn Probe>>,
}

impl ReportWatch {
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let span = info_span!("report_folder", account = %self.acct.name, folder = %self.folder);
        let t = &self.deps.tuning;
        let mut backoff = Backoff::new(t.backoff_min, t.backoff_max);
        loop {
            match self.ensure().instrument(span.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    span.in_scope(|| warn!(error = %e, "cannot create the report folder; retrying"));
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
        }
        let l = Listener {
            deps: self.deps,
            acct: self.acct,
            mailbox: self.folder,
            status: self.status,
            actions: self.actions,
            probe: self.probe,
            prepares: None,
            role: Role::Report,
        };
        l.run(cancel).await;
    }

    async fn ensure(&self) -> Result<(), ListenerError> {
        let mut conn = login::connect(&self.deps, &self.acct).await?;
        let r = conn.ensure_mailbox(&self.folder).await;
        conn.logout().await;
        if r? {
            info!("report folder created");
        }
        Ok(())
    }
}

impl Listener {
    /// One chunk of new UIDs in the report folder: each message is
    /// re-scanned and recorded as a report. Messages over the size limit
    /// are not fetched (recorded nowhere; the log says so).
    pub(super) async fn report_chunk(&self, conn: &mut crate::imap::Conn, sel: &Selected, chunk: &[u32]) -> Result<(), ListenerError> {
        for msg in self.fetch_side_chunk(conn, sel, chunk, "report folder").await? {
            self.take_report(sel, &msg).await?;
        }
        Ok(())
    }

    async fn take_report(&self, sel: &Selected, msg: &Fetched) -> Result<(), ListenerError> {
        let e = &self.deps;
        let sha256 = hex::encode(Sha256::digest(msg.raw.as_slice()));
        // Every engine, as for new mail: a fail-closed scanner that cannot
        // answer leaves the report for the next pass rather than queue it
        // with half a verdict.
        let decision = e
            .decider
            .decide(ScanRequest {
                account: &self.acct.name,
                mailbox: &self.mailbox,
                raw: &msg.raw,
            })
            .await
            .map_err(crate::worker::WorkerError::from)?;
        let eml_path = e.keep_copy(&self.acct.name, &sha256, msg.raw.clone()).await?;
        let env = envelope(&msg.raw);
        let r = NewReport {
            key: MessageKey {
                account: self.acct.name.clone(),
                mailbox: self.mailbox.clone(),
                uidvalidity: sel.uidvalidity,
                uid: msg.uid,
            },
            sha256,
            message_id: env.message_id,
            from_addr: env.from,
            subject: env.subject,
            decision,
            eml_path,
        };
        if let Some(id) = e.store.record_report(r).await? {
            info!(uid = msg.uid, report = id, "the user reported a message; queued for the operator");
            self.status.update(|s| s.processed += 1);
        }
        Ok(())
    }
}

impl ManagerHandle {
    /// Moves a reported message from the report folder back to the
    /// reporter's INBOX (a rejected report). The message is found by UID
    /// when the folder's UIDVALIDITY is unchanged, else by Message-ID; the
    /// copy found must have the reported SHA-256, so nothing else moves.
    /// Returns the detail for the audit log.
    pub async fn return_report(&self, key: &MessageKey, sha256: &str, message_id: Option<&str>) -> Result<String, String> {
        let acct = self
            .inner
            .map()
            .get(&key.account)
            .map(|t| t.config.clone())
            .ok_or_else(|| format!("account {} is not running", key.account))?;
        let deps = self.inner.deps.clone();
        let mut conn = login::connect(&deps, &acct).await.map_err(|e| e.to_string())?;
        let r = async {
            let sel = conn.select(&key.mailbox).await?;
            let mut candidates = if sel.uidvalidity == key.uidvalidity {
                vec![key.uid]
            } else {
                Vec::new()
            };
            if let Some(mid) = message_id {
                candidates.extend(conn.search_header("Message-ID", mid).await?);
            }
            if candidates.is_empty() {
                return Ok(None);
            }
            for f in conn.fetch_bodies(&candidates).await? {
                if hex::encode(Sha256::digest(f.raw.as_slice())) == sha256 {
                    let m = conn.move_uid(f.uid, "INBOX").await?;
                    return Ok(Some((f.uid, m)));
                }
            }
            Ok::<_, ImapError>(None)
        }
        .await;
        conn.logout().await;
        match r {
            Ok(Some((uid, m))) => Ok(format!(
                "moved from {} (UID {uid}) back to INBOX{}",
                key.mailbox,
                m.new_uid.map(|u| format!(" (UID {u})")).unwrap_or_default()
            )),
            Ok(None) => Err(format!("the reported message is no longer in {}", key.mailbox)),
            Err(e) => Err(e.to_string()),
        }
    }
}
