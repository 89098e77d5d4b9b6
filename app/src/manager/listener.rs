//! One listener per (account, folder): a long-lived connection that selects
//! the folder, catches up by UID, backfills if asked, then IDLEs (or polls),
//! and starts over with backoff after any failure.
//!
//! The cursor only moves past a UID once its decision is durable, and a
//! catch-up from `last_uid + 1` runs after every wake, so a dropped
//! connection, a coalesced EXISTS or a crash can delay a message but never
//! lose or repeat it.

use super::backoff::Backoff;
use super::status::{ListenerState, StatusCell};
use super::{Probe, ProbePoint};
use crate::config::{AccountConfig, StartAt};
use crate::domain::MessageKey;
use crate::imap::{Conn, IdleOutcome, ImapError, Selected};
use crate::store::{MailboxState, StoreError};
use crate::worker::{Context, Engine, Processed, WorkerError};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ListenerError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) struct Listener {
    pub(crate) engine: Arc<Engine>,
    pub(crate) acct: Arc<AccountConfig>,
    pub(crate) mailbox: String,
    pub(crate) status: StatusCell,
    pub(crate) actions: Arc<Notify>,
    pub(crate) probe: Option<Arc<dyn Probe>>,
}

impl Listener {
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let span = info_span!("listener", account = %self.acct.name, folder = %self.mailbox);
        async {
            let t = &self.engine.tuning;
            let mut backoff = Backoff::new(t.backoff_min, t.backoff_max);
            while !cancel.is_cancelled() {
                self.status.set(ListenerState::Connecting);
                match self.session(&cancel, &mut backoff).await {
                    Ok(()) => break,
                    Err(e) => {
                        let delay = backoff.next_delay();
                        warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "listener failed; reconnecting");
                        self.status.update(|s| {
                            s.last_error = Some(e.to_string());
                            s.state = ListenerState::Backoff {
                                attempt: backoff.attempts(),
                                delay_ms: delay.as_millis() as u64,
                            };
                        });
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
            self.status.set(ListenerState::Stopped);
            info!("listener stopped");
        }
        .instrument(span)
        .await
    }

    async fn probe(&self, point: ProbePoint) {
        if let Some(p) = &self.probe {
            p.hit(point, &self.acct.name, &self.mailbox).await;
        }
    }

    async fn session(&self, cancel: &CancellationToken, backoff: &mut Backoff) -> Result<(), ListenerError> {
        let t = self.engine.tuning.clone();
        let mut conn = Conn::connect(&self.acct, t.command_timeout).await?;
        self.status.update(|s| s.connects += 1);
        let sel = conn.select(&self.mailbox).await?;
        self.probe(ProbePoint::AfterSelect).await;
        let mut state = self.sync_state(&sel).await?;
        let idle = conn.has("IDLE");
        info!(
            uidvalidity = sel.uidvalidity,
            exists = sel.exists,
            last_uid = state.last_uid,
            idle,
            "watching"
        );
        loop {
            if cancel.is_cancelled() {
                conn.logout().await;
                return Ok(());
            }
            self.status.set(ListenerState::Syncing);
            conn.drain_unsolicited();
            self.catch_up(&mut conn, &sel, &state).await?;
            state = self.reload_state(&sel).await?;
            backoff.reset();
            self.status.update(|s| s.last_error = None);
            if self.backfill_step(&mut conn, &sel, &mut state).await? {
                continue;
            }
            self.probe(ProbePoint::BeforeIdle).await;
            if conn.drain_unsolicited() {
                continue;
            }
            if idle {
                self.status.set(ListenerState::Idling);
                if conn.idle(t.idle_renew, cancel).await? == IdleOutcome::Cancelled {
                    conn.logout().await;
                    return Ok(());
                }
            } else {
                self.status.set(ListenerState::Polling);
                tokio::select! {
                    _ = cancel.cancelled() => { conn.logout().await; return Ok(()); }
                    _ = tokio::time::sleep(t.poll_interval) => {}
                }
                conn.noop().await?;
            }
        }
    }

    async fn reload_state(&self, sel: &Selected) -> Result<MailboxState, ListenerError> {
        self.engine
            .store
            .mailbox_state(&self.acct.name, &self.mailbox)
            .await?
            .filter(|s| s.uidvalidity == sel.uidvalidity)
            .ok_or_else(|| ListenerError::Imap(ImapError::Protocol("mailbox state vanished".into())))
    }

    /// First sight records where to start; a changed UIDVALIDITY voids every
    /// cached UID and restarts the cursor at 0 (re-sync).
    async fn sync_state(&self, sel: &Selected) -> Result<MailboxState, ListenerError> {
        let store = &self.engine.store;
        match store.mailbox_state(&self.acct.name, &self.mailbox).await? {
            Some(st) if st.uidvalidity == sel.uidvalidity => Ok(st),
            Some(st) => {
                let voided = store
                    .reset_uidvalidity(&self.acct.name, &self.mailbox, st.uidvalidity, sel.uidvalidity)
                    .await?;
                warn!(
                    old = st.uidvalidity,
                    new = sel.uidvalidity,
                    voided,
                    "UIDVALIDITY changed; re-syncing the folder"
                );
                self.reload_state(sel).await
            }
            None => {
                let last_uid = sel.uid_next.map(|n| n.saturating_sub(1)).unwrap_or(0);
                let now = self.engine.clock.now();
                let (since, until) = match self.acct.start_at {
                    StartAt::New => (None, None),
                    StartAt::Backfill { days } => {
                        let from = now - chrono::Duration::days(days.into());
                        (Some(from.format("%-d-%b-%Y").to_string()), Some(last_uid))
                    }
                };
                let st = MailboxState {
                    uidvalidity: sel.uidvalidity,
                    last_uid,
                    highest_modseq: sel.highest_modseq,
                    watch_since: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    backfill_since: since,
                    backfill_until_uid: until,
                    backfill_done_uid: until.map(|_| 0),
                };
                store.init_mailbox_state(&self.acct.name, &self.mailbox, &st).await?;
                info!(last_uid, backfill = ?st.backfill_since, "first sight of folder");
                Ok(st)
            }
        }
    }

    /// Processes every UID above the cursor, in bounded chunks.
    async fn catch_up(&self, conn: &mut Conn, sel: &Selected, state: &MailboxState) -> Result<(), ListenerError> {
        let uids = conn.uids_after(state.last_uid).await?;
        if uids.is_empty() {
            return Ok(());
        }
        info!(count = uids.len(), from = state.last_uid + 1, "catching up");
        let cx = Context {
            observe_only: false,
            watch_since: &state.watch_since,
        };
        for chunk in uids.chunks(self.engine.tuning.fetch_chunk as usize) {
            self.process_chunk(conn, sel, chunk, cx).await?;
            let last = chunk.last().copied().unwrap_or(state.last_uid);
            self.engine
                .store
                .advance_cursor(&self.acct.name, &self.mailbox, sel.uidvalidity, last, sel.highest_modseq)
                .await?;
        }
        Ok(())
    }

    async fn process_chunk(&self, conn: &mut Conn, sel: &Selected, chunk: &[u32], cx: Context<'_>) -> Result<(), ListenerError> {
        let limit = self.engine.tuning.max_message_bytes;
        let mut sizes = conn.fetch_sizes(chunk).await?;
        sizes.retain(|(u, _)| chunk.contains(u));
        sizes.sort_unstable();
        sizes.dedup_by_key(|(u, _)| *u);
        // Like the bodies below: a size FETCH cut short can end without an
        // error, and a UID missing here would be skipped when the cursor
        // moves past the chunk. Retry instead; a UID expunged meanwhile is
        // simply absent from the next UID SEARCH.
        if sizes.len() != chunk.len() {
            return Err(ImapError::Protocol(format!("FETCH RFC822.SIZE returned {} of {} messages", sizes.len(), chunk.len())).into());
        }
        let (small, big): (Vec<_>, Vec<_>) = sizes.into_iter().partition(|(_, s)| *s <= limit);
        let key = |uid| MessageKey {
            account: self.acct.name.clone(),
            mailbox: self.mailbox.clone(),
            uidvalidity: sel.uidvalidity,
            uid,
        };
        for (uid, size) in big {
            self.engine.record_oversize(key(uid), size).await?;
        }
        let wanted: Vec<u32> = small.iter().map(|(u, _)| *u).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let bodies = conn.fetch_bodies(&wanted).await?;
        // A FETCH cut short can end without an error. Every UID of the chunk
        // must be present before any is recorded, because recording a later
        // UID moves the cursor past the missing one; a message expunged
        // meanwhile simply drops out of the next UID SEARCH.
        if bodies.len() != wanted.len() {
            return Err(ImapError::Protocol(format!("FETCH returned {} of {} messages", bodies.len(), wanted.len())).into());
        }
        let mut acted = false;
        let keys: Vec<MessageKey> = bodies.iter().map(|m| key(m.uid)).collect();
        let decisions = self.engine.prescan(&keys, &bodies).await;
        for ((msg, k), pre) in bodies.iter().zip(keys).zip(decisions) {
            let r = self.engine.process_scanned(&self.acct, k, msg, cx, pre).await?;
            if let Processed::Decided { intent, .. } = r {
                acted |= intent.is_some();
                self.status.update(|s| s.processed += 1);
            }
        }
        if acted {
            self.actions.notify_one();
        }
        Ok(())
    }

    /// One chunk of backfill (observe-only). Returns true if more remains.
    async fn backfill_step(&self, conn: &mut Conn, sel: &Selected, state: &mut MailboxState) -> Result<bool, ListenerError> {
        let (Some(since), Some(until)) = (state.backfill_since.clone(), state.backfill_until_uid) else {
            return Ok(false);
        };
        let done = state.backfill_done_uid.unwrap_or(0);
        if done >= until {
            return Ok(false);
        }
        let uids = conn.uid_search(&format!("UID {}:{until} SINCE {since}", done + 1)).await?;
        let uids: Vec<u32> = uids.into_iter().filter(|u| *u > done && *u <= until).collect();
        let chunk: Vec<u32> = uids.iter().copied().take(self.engine.tuning.fetch_chunk as usize).collect();
        let cx = Context {
            observe_only: true,
            watch_since: &state.watch_since,
        };
        if !chunk.is_empty() {
            self.process_chunk(conn, sel, &chunk, cx).await?;
        }
        let new_done = if chunk.len() < uids.len() {
            chunk.last().copied().unwrap_or(until)
        } else {
            until
        };
        self.engine
            .store
            .set_backfill_done(&self.acct.name, &self.mailbox, sel.uidvalidity, new_done)
            .await?;
        state.backfill_done_uid = Some(new_done);
        info!(done = new_done, until, remaining = uids.len() - chunk.len(), "backfill progress");
        Ok(new_done < until)
    }
}
