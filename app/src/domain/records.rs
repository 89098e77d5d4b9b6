//! Records several layers share: the intents and operator ops the store
//! keeps and the runners execute, and the audit entries everyone appends.
//! Plain data; the store persists them but they do not depend on it.

use super::{Action, MessageKey};

/// A pending action with everything needed to execute it safely.
#[derive(Debug, Clone)]
pub struct Intent {
    /// Intent id.
    pub id: i64,
    /// Message row id.
    pub message: i64,
    /// Where the message was when the decision was taken.
    pub key: MessageKey,
    /// What to do.
    pub action: Action,
    /// Message-ID, used to find the message if a previous attempt already moved it.
    pub message_id: Option<String>,
    /// SHA-256 of the raw message.
    pub sha256: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Move back to the folder it came from.
    Release,
    /// Expunge from the quarantine/hold folder (the EML copy stays).
    Delete,
    /// Claw-back: find the message wherever the user moved it, scan it
    /// again with every engine, and quarantine it if it is now malicious.
    Recheck,
    /// Claw-back on an operator's word (a campaign quarantined everywhere):
    /// found the same way as a recheck and moved to quarantine without a
    /// re-scan. Ends through `Store::finish_recheck`.
    Quarantine,
}

impl OpKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Delete => "delete",
            Self::Recheck => "recheck",
            Self::Quarantine => "quarantine",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "release" => Some(Self::Release),
            "delete" => Some(Self::Delete),
            "recheck" => Some(Self::Recheck),
            "quarantine" => Some(Self::Quarantine),
            _ => None,
        }
    }
}

/// A pending op with what the runner needs to do it safely.
#[derive(Debug, Clone)]
pub struct Op {
    /// Op id.
    pub id: i64,
    /// Message row.
    pub message: i64,
    /// Where the message was first seen (release goes back there).
    pub key: MessageKey,
    /// Which.
    pub kind: OpKind,
    /// Who asked.
    pub actor: String,
    /// Folder and UID it sits at now.
    pub location: (String, Option<u32>),
    /// Message-ID.
    pub message_id: Option<String>,
    /// SHA-256 of the raw message, to verify before touching anything.
    pub sha256: String,
    /// Stored EML copy.
    pub eml_path: Option<String>,
    /// Why Postern asked for it (claw-back), if it did.
    pub reason: Option<String>,
    /// How the last attempt failed, when one did: an attempt cut off after
    /// its EXPUNGE leaves the message gone without saying so.
    pub earlier_failure: Option<String>,
}

/// How an op ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpState {
    /// Still to run.
    Pending,
    /// Done.
    Done,
    /// The message was no longer where we left it.
    Gone,
    /// The server lacks what is needed.
    Refused,
}

impl OpState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Gone => "gone",
            Self::Refused => "refused",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "done" => Self::Done,
            "gone" => Self::Gone,
            "refused" => Self::Refused,
            _ => return None,
        })
    }
}

/// Why an op could not be requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpRefusal {
    /// No such message.
    NoMessage,
    /// Not in quarantine or hold (already released or deleted, or never moved).
    NotQuarantined,
    /// Another op on it has not finished yet.
    Busy,
}

/// A row to append.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    /// `postern` or `admin:<name>`.
    pub actor: String,
    /// Account, when the event concerns one.
    pub account: Option<String>,
    /// Mailbox, when the event concerns one.
    pub mailbox: Option<String>,
    /// UIDVALIDITY of the message.
    pub uidvalidity: Option<u32>,
    /// UID of the message.
    pub uid: Option<u32>,
    /// Message row id.
    pub message: Option<i64>,
    /// Event name, e.g. `action_done`.
    pub event: String,
    /// Free text.
    pub detail: String,
}

impl AuditEntry {
    /// An event about a mailbox.
    pub fn mailbox(account: &str, mailbox: &str, event: &str, detail: String) -> Self {
        Self {
            actor: "postern".into(),
            account: Some(account.into()),
            mailbox: Some(mailbox.into()),
            event: event.into(),
            detail,
            ..Default::default()
        }
    }

    /// An event about one message.
    pub fn message(key: &MessageKey, message: Option<i64>, event: &str, detail: String) -> Self {
        Self {
            actor: "postern".into(),
            account: Some(key.account.clone()),
            mailbox: Some(key.mailbox.clone()),
            uidvalidity: Some(key.uidvalidity),
            uid: Some(key.uid),
            message,
            event: event.into(),
            detail,
        }
    }
}
