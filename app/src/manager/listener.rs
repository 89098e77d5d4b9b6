//! One listener per (account, folder): a long-lived connection that selects
//! the folder, catches up by UID, backfills if asked, then IDLEs (or polls),
//! and starts over with backoff after any failure.
//!
//! The cursor only moves past a UID once its decision is durable, and a
//! catch-up from `last_uid + 1` runs after every wake, so a dropped
//! connection, a coalesced EXISTS or a crash can delay a message but never
//! lose or repeat it.

use super::backoff::Backoff;
use super::chunk::Span;
use super::status::{ListenerState, StatusCell};
use super::{Probe, ProbePoint};
use crate::config::{AccountConfig, StartAt};
use crate::domain::Mode;
use crate::imap::{Conn, IdleOutcome, IdleTimers, ImapError, Selected};
use crate::store::{MailboxState, StoreError};
use crate::worker::{Context, Deps, WorkerError};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

/// UIDVALIDITY changes one folder may go through within
/// [`CHURN_WINDOW`] before it is considered broken. Each change voids every
/// cached UID and re-records the folder, so a server that changes it on
/// every SELECT would otherwise add one row per message per reconnect
/// (issue 18, item 8). Real changes are rare events (a restored or
/// rebuilt mailbox); three a day is already a sick server.
const MAX_UIDVALIDITY_CHANGES: u32 = 3;
/// See [`MAX_UIDVALIDITY_CHANGES`].
const CHURN_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// UIDs one backfill step takes through the backlog window before new mail
/// is looked at again: large enough that the window stays full (chunk
/// boundaries no longer drain it), small enough that new mail waits at
/// most a few seconds behind an old backlog.
const BACKFILL_SPAN: usize = 256;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ListenerError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// The server misbehaves beyond what a retry fixes.
    #[error("{0}")]
    Broken(String),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Login(#[from] super::login::LoginError),
}

/// What a listener does with new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A watched folder: scan, decide, act.
    Watch,
    /// The Junk folder of an account that learns from its user: new mail
    /// there is the user's spam verdict (issue 17); nothing is scanned or moved.
    Junk,
    /// The report folder: new mail there is a user's phishing report
    /// (issue 17); it is re-scanned and queued, never moved or flagged.
    Report,
}

pub(crate) struct Listener {
    pub(crate) deps: Arc<Deps>,
    pub(crate) acct: Arc<AccountConfig>,
    pub(crate) mailbox: String,
    pub(crate) status: StatusCell,
    pub(crate) actions: Arc<Notify>,
    pub(crate) probe: Option<Arc<dyn Probe>>,
    pub(crate) role: Role,
    /// The account's action runner status, given to its first watched
    /// folder only: that listener creates the action folders at connect.
    pub(crate) prepares: Option<StatusCell>,
}

impl Listener {
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let span = info_span!("listener", account = %self.acct.name, folder = %self.mailbox);
        async {
            let t = &self.deps.tuning;
            let mut backoff = Backoff::new(t.backoff_min, t.backoff_max);
            while !cancel.is_cancelled() {
                // A broken folder stays reported broken until a healthy pass.
                self.status.update(|s| {
                    if !matches!(s.state, ListenerState::Broken { .. }) {
                        s.state = ListenerState::Connecting;
                    }
                });
                match self.session(&cancel, &mut backoff).await {
                    Ok(()) => break,
                    Err(e) => {
                        let delay = backoff.next_delay();
                        warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "listener failed; reconnecting");
                        let state = match &e {
                            ListenerError::Broken(reason) => ListenerState::Broken { reason: reason.clone() },
                            // A refused or missing OAuth2 grant is an account
                            // error until the operator acts; retries go on,
                            // spaced by the growing backoff.
                            ListenerError::Login(l) if l.needs_operator() => ListenerState::Broken { reason: l.to_string() },
                            _ => ListenerState::Backoff {
                                attempt: backoff.attempts(),
                                delay_ms: delay.as_millis() as u64,
                            },
                        };
                        self.status.update(|s| {
                            s.last_error = Some(e.to_string());
                            s.state = state;
                        });
                        self.escalate_if_stuck().await;
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

    /// A fresh connection with the folder selected.
    pub(super) async fn open(&self) -> Result<(Conn, Selected), ListenerError> {
        let mut conn = super::login::connect(&self.deps, &self.acct).await?;
        self.status.update(|s| s.connects += 1);
        // Shadow mode never creates folders. A folder that cannot be
        // created is the runner's problem (shown on its status); watching
        // goes on.
        if let Some(runner) = &self.prepares
            && self.acct.mode != Mode::Shadow
        {
            match super::runner::prepare_folders(&mut conn, &self.acct, runner).await {
                Ok(()) | Err(ImapError::FolderUnavailable { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let sel = conn.select(&self.mailbox).await?;
        Ok((conn, sel))
    }

    async fn session(&self, cancel: &CancellationToken, backoff: &mut Backoff) -> Result<(), ListenerError> {
        let t = self.deps.tuning.clone();
        let timers = IdleTimers {
            renew: t.idle_renew,
            probe_every: t.probe_every,
            probe_timeout: t.probe_timeout,
        };
        let (mut conn, mut sel) = self.open().await?;
        self.find_limits(&mut conn, &sel).await?;
        self.probe(ProbePoint::AfterSelect).await;
        let mut state = self.sync_state(&mut conn, &sel).await?;
        let idle = conn.has("IDLE");
        info!(
            uidvalidity = sel.uidvalidity,
            exists = sel.exists,
            last_uid = state.last_uid,
            idle,
            "watching"
        );
        // The folder was just selected; every later pass asks again first,
        // whatever woke it (IDLE, renewal, poll, or a change seen before IDLE).
        let mut just_selected = true;
        let mut renewed = false;
        // An IDLE wake that brought nothing new. Dovecot's session on a
        // folder deleted and recreated under it wakes every IDLE at once and
        // answers STATUS from its stale view; without a fresh SELECT after
        // such a wake the listener would spin on that view and never reach
        // the renewal's re-select.
        let mut idle_woke = false;
        let mut empty_wake = false;
        loop {
            if cancel.is_cancelled() {
                conn.logout().await;
                return Ok(());
            }
            self.status.set(ListenerState::Syncing);
            if !std::mem::take(&mut just_selected) {
                let reselect = std::mem::take(&mut renewed) || std::mem::take(&mut empty_wake);
                self.recheck_folder(&mut conn, &mut sel, &mut state, reselect).await?;
            }
            conn.drain_unsolicited();
            let found = self.catch_up(&mut conn, &sel, &state).await?;
            empty_wake = std::mem::take(&mut idle_woke) && !found;
            state = self.reload_state(&sel).await?;
            backoff.reset();
            self.status.update(|s| {
                s.last_error = None;
                s.failing_since = None;
                s.stuck = false;
            });
            if self.backfill_step(&mut conn, &sel, &mut state).await? {
                continue;
            }
            self.probe(ProbePoint::BeforeIdle).await;
            if conn.drain_unsolicited() {
                continue;
            }
            if idle {
                self.status.set(ListenerState::Idling);
                match conn.idle(timers, cancel).await? {
                    IdleOutcome::Cancelled => {
                        conn.logout().await;
                        return Ok(());
                    }
                    IdleOutcome::Renew => renewed = true,
                    IdleOutcome::Woken => idle_woke = true,
                }
            } else {
                self.status.set(ListenerState::Polling);
                tokio::select! {
                    _ = cancel.cancelled() => { conn.logout().await; return Ok(()); }
                    _ = tokio::time::sleep(t.poll_interval) => {}
                }
                conn.noop().await?;
                renewed = true;
            }
        }
    }

    async fn reload_state(&self, sel: &Selected) -> Result<MailboxState, ListenerError> {
        self.deps
            .store
            .mailbox_state(&self.acct.name, &self.mailbox)
            .await?
            .filter(|s| s.uidvalidity == sel.uidvalidity)
            .ok_or_else(|| ListenerError::Imap(ImapError::Protocol("mailbox state vanished".into())))
    }

    /// First sight records where to start; a changed UIDVALIDITY voids every
    /// cached UID and restarts the cursor at 0 (re-sync).
    pub(super) async fn sync_state(&self, conn: &mut Conn, sel: &Selected) -> Result<MailboxState, ListenerError> {
        let store = &self.deps.store;
        match store.mailbox_state(&self.acct.name, &self.mailbox).await? {
            Some(st) if st.uidvalidity == sel.uidvalidity => {
                self.refuse_reused_uids(&st, sel).await?;
                Ok(st)
            }
            Some(st) => {
                self.bound_churn(&st, sel).await?;
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
                // Courier's SELECT sends no UIDNEXT; without it every
                // message already there would count as new (issue 15, defect 6).
                let uid_next = match sel.uid_next {
                    Some(n) => n,
                    None => conn.uid_next_fallback(&self.mailbox, sel.exists).await?,
                };
                let last_uid = uid_next.saturating_sub(1);
                let now = self.deps.clock.now();
                // Learning starts with what the user files from now on.
                let start_at = if self.role == Role::Watch {
                    self.acct.start_at
                } else {
                    StartAt::New
                };
                let (since, until) = match start_at {
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

    /// Refuses a UIDVALIDITY change once the folder had
    /// [`MAX_UIDVALIDITY_CHANGES`] within [`CHURN_WINDOW`]: the folder is
    /// then left alone (no reset, no re-processing) and reported broken
    /// until the server keeps one UIDVALIDITY long enough for the window to
    /// pass.
    async fn bound_churn(&self, st: &MailboxState, sel: &Selected) -> Result<(), ListenerError> {
        let store = &self.deps.store;
        let since = (self.deps.clock.now() - CHURN_WINDOW).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let recent = store
            .mailbox_events_since(&self.acct.name, &self.mailbox, "uidvalidity_changed", &since)
            .await?;
        if recent < MAX_UIDVALIDITY_CHANGES {
            return Ok(());
        }
        let reason = format!(
            "server broken: UIDVALIDITY changed {recent} times within {} h (now {} after {}); the folder is not re-processed until it stays stable",
            CHURN_WINDOW.num_hours(),
            sel.uidvalidity,
            st.uidvalidity
        );
        self.broken("uidvalidity_unstable", reason).await
    }

    /// One audit row about this folder.
    async fn audit(&self, event: &str, detail: String) -> Result<(), StoreError> {
        let entry = crate::store::AuditEntry::mailbox(&self.acct.name, &self.mailbox, event, detail);
        self.deps.store.audit(entry).await
    }

    /// The folder's server is broken: one warning and audit row per
    /// listener run (not one per retry), then the error that reports it.
    async fn broken(&self, event: &str, reason: String) -> Result<(), ListenerError> {
        if !self
            .status
            .snapshot()
            .is_some_and(|s| matches!(s.state, ListenerState::Broken { .. }))
        {
            warn!(%reason, "folder not processed");
            self.audit(event, reason.clone()).await?;
        }
        Err(ListenerError::Broken(reason))
    }

    /// Refuses a folder whose server announces a UIDNEXT at or below a UID
    /// already seen under the same UIDVALIDITY. UIDs only grow within one
    /// UIDVALIDITY (RFC 3501, 2.3.1.1); a server restored from a backup or
    /// rebuilding its index without a new UIDVALIDITY hands out UIDs again.
    /// Catching up above the cursor would then never see the new mail at
    /// the reused UIDs, and a reused UID of a recorded message would pass
    /// as already scanned: mail unscanned with `/health` green. The folder
    /// is reported broken instead (one audit row per listener run) until
    /// the server gives the folder a new UIDVALIDITY, which re-syncs it.
    /// Actions already queued are safe: each confirms the message's SHA-256
    /// before it moves anything. A server that sends no UIDNEXT on SELECT
    /// (Courier) is not checked.
    pub(super) async fn refuse_reused_uids(&self, st: &MailboxState, sel: &Selected) -> Result<(), ListenerError> {
        let Some(next) = sel.uid_next.filter(|n| *n <= st.last_uid) else {
            return Ok(());
        };
        let reason = format!(
            "server broken: UIDNEXT {next} is not above UID {} already seen under the same UIDVALIDITY {}; new mail would reuse UIDs Postern has scanned, so the folder is not processed until the server gives it a new UIDVALIDITY",
            st.last_uid, sel.uidvalidity
        );
        self.broken("uids_reused", reason).await
    }

    /// After a failure: starts the failure clock, and once the folder has
    /// failed for `stuck_after` without one healthy pass, marks it stuck
    /// (an account error on the dashboard and `/health`, alerted by the
    /// runtime) with one audit row (issue 18, item 10).
    async fn escalate_if_stuck(&self) {
        let now = self.deps.clock.now();
        let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut newly = None;
        self.status.update(|s| {
            let since = s.failing_since.get_or_insert(stamp).clone();
            let failing =
                chrono::DateTime::parse_from_rfc3339(&since).map_or(chrono::Duration::zero(), |t| now - t.with_timezone(&chrono::Utc));
            let limit = chrono::Duration::from_std(self.deps.tuning.stuck_after).unwrap_or(chrono::Duration::MAX);
            if !s.stuck && failing >= limit {
                s.stuck = true;
                newly = Some((since, s.last_error.clone().unwrap_or_default()));
            }
        });
        let Some((since, error)) = newly else { return };
        let detail = format!("failing since {since} without a healthy pass; last error: {error}");
        warn!(%since, error = %error, "folder stuck; escalated as an account error");
        let entry = crate::store::AuditEntry::mailbox(&self.acct.name, &self.mailbox, "folder_stuck", detail);
        if let Err(e) = self.deps.store.audit(entry).await {
            warn!(error = %e, "cannot record the stuck folder");
        }
    }

    /// Processes every UID above the cursor; true when there was any.
    async fn catch_up(&self, conn: &mut Conn, sel: &Selected, state: &MailboxState) -> Result<bool, ListenerError> {
        let uids = conn.uids_after(state.last_uid).await?;
        if uids.is_empty() {
            return Ok(false);
        }
        info!(count = uids.len(), from = state.last_uid + 1, "catching up");
        let junk = self.status.junk_folder();
        let cx = Context {
            observe_only: false,
            watch_since: &state.watch_since,
            junk: junk.as_deref(),
        };
        match self.role {
            Role::Watch => self.process_span(conn, sel, &uids, cx, Span::CatchUp).await?,
            Role::Junk => {
                for chunk in uids.chunks(self.deps.tuning.fetch_chunk as usize) {
                    self.learn_chunk(conn, sel, chunk).await?;
                    let last = chunk.last().copied().unwrap_or(state.last_uid);
                    self.deps
                        .store
                        .advance_cursor(&self.acct.name, &self.mailbox, sel.uidvalidity, last, sel.highest_modseq)
                        .await?;
                }
            }
            Role::Report => {
                for chunk in uids.chunks(self.deps.tuning.fetch_chunk as usize) {
                    self.report_chunk(conn, sel, chunk).await?;
                    let last = chunk.last().copied().unwrap_or(state.last_uid);
                    self.deps
                        .store
                        .advance_cursor(&self.acct.name, &self.mailbox, sel.uidvalidity, last, sel.highest_modseq)
                        .await?;
                }
            }
        }
        Ok(true)
    }

    /// One span of backfill (observe-only), up to [`BACKFILL_SPAN`] UIDs
    /// through the backlog window. Returns true if more remains.
    async fn backfill_step(&self, conn: &mut Conn, sel: &Selected, state: &mut MailboxState) -> Result<bool, ListenerError> {
        let (Some(since), Some(until)) = (state.backfill_since.clone(), state.backfill_until_uid) else {
            return Ok(false);
        };
        let done = state.backfill_done_uid.unwrap_or(0);
        if done >= until {
            return Ok(false);
        }
        let uids = match conn.uid_search(&format!("UID {}:{until} SINCE {since}", done + 1)).await {
            Ok(uids) => uids,
            // Refused for good (a server without SINCE): retrying would keep
            // the folder from watching new mail, so the backfill ends here,
            // said in the log and the audit trail rather than shown finished.
            Err(ImapError::Refused { detail, .. }) => {
                let why = format!("backfill stopped after UID {done}: the server refused its search ({detail})");
                warn!(%why, "backfill refused");
                self.audit("backfill_refused", why).await?;
                self.deps
                    .store
                    .set_backfill_done(&self.acct.name, &self.mailbox, sel.uidvalidity, until)
                    .await?;
                state.backfill_done_uid = Some(until);
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        let uids: Vec<u32> = uids.into_iter().filter(|u| *u > done && *u <= until).collect();
        let chunk: Vec<u32> = uids.iter().copied().take(BACKFILL_SPAN).collect();
        let junk = self.status.junk_folder();
        let cx = Context {
            observe_only: true,
            watch_since: &state.watch_since,
            junk: junk.as_deref(),
        };
        let remaining = (uids.len() - chunk.len()) as u64;
        if !chunk.is_empty() {
            self.process_span(conn, sel, &chunk, cx, Span::Backfill { beyond: remaining })
                .await?;
        }
        let new_done = if chunk.len() < uids.len() {
            chunk.last().copied().unwrap_or(until)
        } else {
            until
        };
        self.deps
            .store
            .set_backfill_done(&self.acct.name, &self.mailbox, sel.uidvalidity, new_done)
            .await?;
        state.backfill_done_uid = Some(new_done);
        if chunk.is_empty() {
            // Nothing left to scan: the dashboard shows the backfill finished.
            self.deps.store.record_backfill_chunk(&self.acct.name, &self.mailbox, 0, 0).await?;
        }
        info!(done = new_done, until, remaining = uids.len() - chunk.len(), "backfill progress");
        Ok(new_done < until)
    }
}
