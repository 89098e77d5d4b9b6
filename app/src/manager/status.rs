//! Listener status shared with whoever holds the manager handle.

use std::sync::{Arc, Mutex};

/// What a listener is doing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerState {
    /// Opening a connection.
    Connecting,
    /// Catching up or backfilling.
    Syncing,
    /// Waiting in IDLE.
    Idling,
    /// Waiting between polls (server without IDLE).
    Polling,
    /// Waiting before a reconnect.
    Backoff {
        /// Failures in a row.
        attempt: u32,
        /// Milliseconds until the next try.
        delay_ms: u64,
    },
    /// The server misbehaves in a way retrying cannot fix (UIDVALIDITY
    /// changing on every SELECT): the folder is not processed until it
    /// behaves again; only a SELECT is retried, with backoff.
    Broken {
        /// What the server does wrong.
        reason: String,
    },
    /// Stopped.
    Stopped,
}

/// A snapshot of one listener (or an account's action runner).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListenerStatus {
    /// Account name.
    pub account: String,
    /// Folder, or `(actions)` for the runner.
    pub mailbox: String,
    /// Current state.
    pub state: ListenerState,
    /// Successful logins so far.
    pub connects: u64,
    /// Messages decided by this listener.
    pub processed: u64,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// When the current run of failures began (RFC 3339); cleared by one
    /// healthy pass (a completed catch-up).
    pub failing_since: Option<String>,
    /// Failing longer than `POSTERN_IMAP_STUCK_MINS`: an account error for
    /// the dashboard, `/health` and an alert.
    pub stuck: bool,
    /// Where the account's spam goes, as found at the last connect.
    pub junk: Option<JunkRoute>,
    /// How moving mail is limited on this server, as found at the last
    /// connect (neither MOVE nor UIDPLUS: a move waits while other mail in
    /// the folder is marked `\Deleted`): shown on `/health`, so a verdict
    /// that waits is no surprise.
    pub move_caveat: Option<String>,
    /// Why the flag verdict cannot mark mail in this folder (it keeps no
    /// keywords), as found at the last connect.
    pub cannot_mark: Option<String>,
    /// A folder Postern must move mail into cannot be created (action
    /// runner only): every action on the account waits until it can.
    pub folder_problem: Option<String>,
}

/// Where the junk verdict sends an account's spam.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JunkRoute {
    /// The folder, or none: spam then only gets the `$Junk` keyword.
    pub folder: Option<String>,
    /// How it was chosen, for `/health` and the accounts page.
    pub why: String,
}

impl ListenerStatus {
    /// Whether this listener needs the operator: stuck past the configured
    /// time, broken by the server, or missing a folder it cannot create.
    pub fn needs_attention(&self) -> bool {
        self.stuck || self.folder_problem.is_some() || matches!(self.state, ListenerState::Broken { .. })
    }

    /// Not working right now: waiting to reconnect after a failure, or
    /// broken. The dashboard shows such an account red, never "running".
    pub fn failing(&self) -> bool {
        self.needs_attention() || matches!(self.state, ListenerState::Backoff { .. }) || self.reconnecting()
    }

    /// Connecting again after a failure, with no healthy pass since. A hung
    /// server (accepting TCP, never greeting) keeps a listener here for a
    /// whole connect timeout between short backoffs: read as healthy, it
    /// showed `/health` green through an outage (found by an interop probe).
    pub fn reconnecting(&self) -> bool {
        matches!(self.state, ListenerState::Connecting) && self.failing_since.is_some()
    }
}

/// Shared, cheaply updated status cell.
#[derive(Debug, Clone)]
pub(crate) struct StatusCell(Arc<Mutex<ListenerStatus>>);

impl StatusCell {
    pub(crate) fn new(account: &str, mailbox: &str) -> Self {
        Self(Arc::new(Mutex::new(ListenerStatus {
            account: account.into(),
            mailbox: mailbox.into(),
            state: ListenerState::Connecting,
            connects: 0,
            processed: 0,
            last_error: None,
            failing_since: None,
            stuck: false,
            junk: None,
            move_caveat: None,
            cannot_mark: None,
            folder_problem: None,
        })))
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut ListenerStatus)) {
        if let Ok(mut s) = self.0.lock() {
            f(&mut s);
        }
    }

    pub(crate) fn set(&self, state: ListenerState) {
        self.update(|s| s.state = state);
    }

    /// The Junk folder found at the last connect.
    pub(crate) fn junk_folder(&self) -> Option<String> {
        self.0.lock().ok().and_then(|s| s.junk.as_ref().and_then(|j| j.folder.clone()))
    }

    pub(crate) fn snapshot(&self) -> Option<ListenerStatus> {
        self.0.lock().ok().map(|s| s.clone())
    }
}
