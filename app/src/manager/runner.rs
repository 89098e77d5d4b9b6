//! The per-account intent runner: one pooled connection that executes
//! pending intents in order. It is the only place actions happen, so
//! resuming after a crash is the same code path as normal operation.
//!
//! The connection is opened only when something is pending and closed
//! after `action_idle` of quiet: an idle account holds only its IDLE
//! connections, one per watched folder (issue 21).

use super::backoff::Backoff;
use super::status::{ListenerState, StatusCell};
use crate::actions;
use crate::config::AccountConfig;
use crate::domain::{Event, Mode};
use crate::failpoint;
use crate::imap::{Conn, ImapError};
use crate::store::{Intent, IntentState, Op, OpKind, OpState, PurgeItem, RecheckOutcome, StoreError};
use crate::worker::Deps;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

#[derive(Debug, thiserror::Error)]
enum RunnerError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Login(#[from] super::login::LoginError),
}

/// Why nothing was done on a shadow account.
pub(crate) const SHADOW_REFUSAL: &str = "account is in shadow mode: Postern never acts on its mailbox; nothing touched";

pub(crate) struct Runner {
    pub(crate) deps: Arc<Deps>,
    pub(crate) acct: Arc<AccountConfig>,
    pub(crate) notify: Arc<Notify>,
    pub(crate) status: StatusCell,
    /// Actions waiting on mail marked deleted, warned about once each.
    pub(crate) waiting: std::sync::Mutex<std::collections::HashSet<Waiting>>,
}

/// An action that waits on the user's mail marked deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Waiting {
    Intent(i64),
    Op(i64),
}

/// The action connection and when it last did work.
struct Pooled {
    conn: Option<Conn>,
    used: Instant,
}

impl Pooled {
    /// How long until the open connection has been quiet for `idle`; none
    /// when nothing is open.
    fn idle_left(&self, idle: Duration) -> Option<Duration> {
        self.conn.as_ref().map(|_| idle.saturating_sub(self.used.elapsed()))
    }
}

impl Runner {
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let span = info_span!("actions", account = %self.acct.name);
        async {
            let t = &self.deps.tuning;
            let mut backoff = Backoff::new(t.backoff_min, t.backoff_max);
            let mut pool = Pooled {
                conn: None,
                used: Instant::now(),
            };
            loop {
                let wait = match self.drain(&mut pool).await {
                    Ok(()) => {
                        backoff.reset();
                        self.status.set(ListenerState::Idling);
                        // Wake in time to close a connection gone quiet.
                        pool.idle_left(t.action_idle)
                            .map_or(t.action_retry, |left| left.min(t.action_retry))
                    }
                    Err(e) => {
                        pool.conn = None;
                        let d = backoff.next_delay();
                        warn!(error = %e, retry_in_ms = d.as_millis() as u64, "action connection failed");
                        let state = match &e {
                            RunnerError::Login(l) if l.needs_operator() => ListenerState::Broken { reason: l.to_string() },
                            _ => ListenerState::Backoff {
                                attempt: backoff.attempts(),
                                delay_ms: d.as_millis() as u64,
                            },
                        };
                        self.status.update(|s| {
                            s.last_error = Some(e.to_string());
                            s.state = state;
                        });
                        d
                    }
                };
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                if pool.idle_left(t.action_idle) == Some(Duration::ZERO)
                    && let Some(c) = pool.conn.take()
                {
                    debug!("closing the quiet action connection");
                    c.logout().await;
                }
            }
            if let Some(c) = pool.conn.take() {
                c.logout().await;
            }
            self.status.set(ListenerState::Stopped);
        }
        .instrument(span)
        .await
    }

    async fn connect(&self) -> Result<Conn, RunnerError> {
        self.status.set(ListenerState::Connecting);
        let mut c = super::login::connect(&self.deps, &self.acct).await?;
        prepare_folders(&mut c, &self.acct, &self.status).await?;
        self.status.update(|s| s.connects += 1);
        Ok(c)
    }

    /// Executes every pending intent and operator request, connecting
    /// first only when there is one; transport failures bubble up so the
    /// connection is replaced, the intent stays pending.
    async fn drain(&self, pool: &mut Pooled) -> Result<(), RunnerError> {
        if self.acct.mode == Mode::Shadow {
            return self.refuse_shadow().await;
        }
        let store = &self.deps.store;
        let intents = store.pending_intents(&self.acct.name).await?;
        let ops = store.pending_ops(&self.acct.name).await?;
        let purges = store.pending_purge_items(&self.acct.name).await?;
        if intents.is_empty() && ops.is_empty() && purges.is_empty() {
            return Ok(());
        }
        if pool.conn.is_none() {
            pool.conn = Some(self.connect().await?);
        }
        let Some(conn) = pool.conn.as_mut() else { return Ok(()) };
        pool.used = Instant::now();
        self.drain_intents(conn, intents).await?;
        self.drain_ops(conn, ops).await?;
        self.drain_purges(conn, purges).await?;
        pool.used = Instant::now();
        Ok(())
    }

    async fn drain_intents(&self, c: &mut Conn, intents: Vec<Intent>) -> Result<(), RunnerError> {
        let store = &self.deps.store;
        for intent in intents {
            failpoint::hit(failpoint::AFTER_DECISION).await;
            self.status.set(ListenerState::Syncing);
            let intent = Intent {
                action: actions::retarget(&intent.action, &self.acct),
                ..intent
            };
            if self
                .still_waiting(c, Waiting::Intent(intent.id), &intent.key.mailbox, intent.key.uid)
                .await
            {
                continue;
            }
            let max = self.deps.tuning.action_max_attempts;
            match actions::execute(c, &intent).await {
                Ok(done) => {
                    info!(
                        intent = intent.id,
                        folder = %intent.key.mailbox,
                        uid = intent.key.uid,
                        state = done.state.as_str(),
                        detail = %done.detail,
                        "action finished"
                    );
                    store.finish_intent(&intent, done.state, done.location, done.detail).await?;
                    self.status.update(|s| s.processed += 1);
                }
                // Not now (a move that would expunge the user's mail marked
                // deleted): pending, not counted, retried at the next pass.
                Err(ImapError::Deferred(why)) => {
                    store.intent_interrupted(&intent, &why).await?;
                    // Said once, then quietly retried every pass.
                    if self.starts_waiting(Waiting::Intent(intent.id)) {
                        warn!(intent = intent.id, %why, "action waits");
                    } else {
                        debug!(intent = intent.id, "action still waits");
                    }
                    continue;
                }
                // A refusal concerns this message only: record it, keep going.
                Err(ImapError::Refused { command, detail }) => {
                    let e = format!("{command}: {detail}");
                    let failed = store.intent_attempt_failed(&intent, &e, max).await?;
                    warn!(intent = intent.id, error = %e, failed, "server refused action");
                }
                // A lost connection is not this message's failure: the
                // move may even have happened before the answer was lost.
                Err(e) => {
                    store.intent_interrupted(&intent, &e.to_string()).await?;
                    return Err(e.into());
                }
            }
            let _ = self.deps.events.send(Event::Updated { id: intent.message });
        }
        Ok(())
    }

    /// Shadow mode never acts, whoever asked: an intent decided before the
    /// account was switched to shadow, a claw-back re-check, a maintenance
    /// expunge or an operator request all end refused, and the runner never
    /// even connects (it would create the quarantine folders). This is the
    /// one place actions happen, so refusing here covers every path.
    async fn refuse_shadow(&self) -> Result<(), RunnerError> {
        let store = &self.deps.store;
        for intent in store.pending_intents(&self.acct.name).await? {
            store
                .finish_intent(&intent, IntentState::Refused, None, SHADOW_REFUSAL.into())
                .await?;
            let _ = self.deps.events.send(Event::Updated { id: intent.message });
        }
        for op in store.pending_ops(&self.acct.name).await? {
            if matches!(op.kind, OpKind::Recheck | OpKind::Quarantine) {
                let out = RecheckOutcome {
                    state: OpState::Refused,
                    decision: None,
                    moved_to: None,
                    eml_path: None,
                    detail: SHADOW_REFUSAL.into(),
                };
                store.finish_recheck(&op, out).await?;
            } else {
                store.finish_op(&op, OpState::Refused, None, None, SHADOW_REFUSAL.into()).await?;
            }
            let _ = self.deps.events.send(Event::Updated { id: op.message });
        }
        for item in store.pending_purge_items(&self.acct.name).await? {
            let detail = format!(
                "{SHADOW_REFUSAL}; would have moved UID {} of {} to {}",
                item.key.uid, item.key.mailbox, self.acct.quarantine_folder
            );
            let done = crate::store::PurgeDone {
                state: "observed",
                detail,
                eml_path: None,
                moved_to: None,
            };
            store.finish_purge_item(&item, done).await?;
            if let Some(id) = item.message {
                let _ = self.deps.events.send(Event::Updated { id });
            }
        }
        Ok(())
    }

    /// Moves the matches of running purge jobs to quarantine (issue 17,
    /// item 5), one message at a time, each closed and audited on its own.
    async fn drain_purges(&self, c: &mut Conn, items: Vec<PurgeItem>) -> Result<(), RunnerError> {
        let store = &self.deps.store;
        for item in items {
            self.status.set(ListenerState::Syncing);
            let done = super::search::purge_one(c, &self.acct, &item, &self.deps.eml_dir).await?;
            info!(purge = item.job, uid = item.key.uid, state = done.state, detail = %done.detail, "purge item finished");
            store.finish_purge_item(&item, done).await?;
            if let Some(id) = item.message {
                let _ = self.deps.events.send(Event::Updated { id });
            }
        }
        Ok(())
    }

    /// Records that `who` waits; true the first time, when it is worth a
    /// warning (a poisoned lock counts as the first time).
    fn starts_waiting(&self, who: Waiting) -> bool {
        self.waiting.lock().map(|mut w| w.insert(who)).unwrap_or(true)
    }

    /// Whether an action already known to wait on the user's mail marked
    /// deleted still does: one search instead of fetching its message
    /// again at every pass. Anything but a clear "still waits" lets the
    /// attempt run, which meets and records a failure itself.
    async fn still_waiting(&self, c: &mut Conn, who: Waiting, folder: &str, uid: u32) -> bool {
        if !self.waiting.lock().map(|w| w.contains(&who)).unwrap_or(false) {
            return false;
        }
        match c.still_waits(folder, uid).await {
            Ok(Some(why)) => {
                debug!(?who, %why, "action still waits");
                true
            }
            Ok(None) | Err(_) => false,
        }
    }

    /// Executes operator requests (release, delete) the same way.
    async fn drain_ops(&self, c: &mut Conn, ops: Vec<Op>) -> Result<(), RunnerError> {
        let store = &self.deps.store;
        for op in ops {
            self.status.set(ListenerState::Syncing);
            if matches!(op.kind, OpKind::Recheck | OpKind::Quarantine) {
                let e = &self.deps;
                let done = if op.kind == OpKind::Quarantine {
                    actions::quarantine(c, &self.acct, &op, &e.eml_dir).await
                } else {
                    actions::recheck(c, &self.acct, &op, e.decider.as_ref(), &e.eml_dir).await
                };
                match done {
                    Ok(out) => {
                        info!(op = op.id, state = out.state.as_str(), detail = %out.detail, "recheck finished");
                        let clawed = out.moved_to.is_some();
                        store.finish_recheck(&op, out).await?;
                        if clawed {
                            let _ = self.deps.events.send(Event::Clawback { id: op.message });
                        }
                    }
                    Err(ImapError::Deferred(why)) => {
                        store.op_waits(&op, &why).await?;
                        debug!(op = op.id, %why, "recheck waits");
                        continue;
                    }
                    Err(ImapError::Refused { command, detail }) => {
                        let out = RecheckOutcome {
                            state: OpState::Refused,
                            decision: None,
                            moved_to: None,
                            eml_path: None,
                            detail: format!("{command}: {detail}"),
                        };
                        store.finish_recheck(&op, out).await?;
                    }
                    Err(e) => {
                        store.op_attempt_failed(&op, &e.to_string()).await?;
                        return Err(e.into());
                    }
                }
                let _ = self.deps.events.send(Event::Updated { id: op.message });
                continue;
            }
            if let (folder, Some(uid)) = &op.location
                && self.still_waiting(c, Waiting::Op(op.id), folder, *uid).await
            {
                continue;
            }
            match actions::execute_op(c, &op, &self.deps.eml_dir).await {
                Ok(done) => {
                    info!(op = op.id, kind = op.kind.as_str(), state = done.state.as_str(), detail = %done.detail, "operator action finished");
                    store.finish_op(&op, done.state, done.location, done.eml_path, done.detail).await?;
                }
                Err(ImapError::Deferred(why)) => {
                    store.op_waits(&op, &why).await?;
                    if self.starts_waiting(Waiting::Op(op.id)) {
                        warn!(op = op.id, %why, "operator action waits");
                    }
                    continue;
                }
                Err(ImapError::Refused { command, detail }) => {
                    let e = format!("{command}: {detail}");
                    warn!(op = op.id, error = %e, "server refused operator action");
                    store.finish_op(&op, OpState::Refused, None, None, e).await?;
                }
                Err(e) => {
                    store.op_attempt_failed(&op, &e.to_string()).await?;
                    return Err(e.into());
                }
            }
            let _ = self.deps.events.send(Event::Updated { id: op.message });
        }
        Ok(())
    }
}

/// Creates the folders actions move mail into, and shows a folder that
/// cannot be created on the runner's `status` (/health and the dashboard,
/// not only the log). The runner does it when it connects; the account's
/// first listener does it at its own connect, so a missing folder shows at
/// start although the runner connects only when it has work.
pub(super) async fn prepare_folders(c: &mut Conn, acct: &AccountConfig, status: &StatusCell) -> Result<(), ImapError> {
    for folder in [&acct.quarantine_folder, &acct.hold_folder] {
        match c.ensure_mailbox(folder).await {
            Ok(true) => info!(folder = %folder, as_named = %c.resolved(folder), "created folder"),
            Ok(false) => {}
            Err(e @ ImapError::FolderUnavailable { .. }) => {
                status.update(|s| s.folder_problem = Some(e.to_string()));
                return Err(e);
            }
            Err(e) => return Err(e),
        }
    }
    status.update(|s| s.folder_problem = None);
    Ok(())
}
