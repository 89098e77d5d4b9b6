//! Plain data shared by every layer: message identity, verdicts and the
//! actions they turn into. No I/O lives here.

use serde::{Deserialize, Serialize};
use std::fmt;

mod records;
pub use records::{AuditEntry, Intent, Op, OpKind, OpRefusal, OpState};

/// The identity of one message copy on the server. UIDs are only meaningful
/// together with the mailbox's UIDVALIDITY (RFC 3501 §2.3.1.1), so all four
/// parts travel together and no action is ever issued on a bare UID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageKey {
    /// Account name from config.yaml.
    pub account: String,
    /// Mailbox (folder) name as the server spells it.
    pub mailbox: String,
    /// UIDVALIDITY of the mailbox when the UID was read.
    pub uidvalidity: u32,
    /// UID within that mailbox generation.
    pub uid: u32,
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{};UIDVALIDITY={}/;UID={}",
            self.account, self.mailbox, self.uidvalidity, self.uid
        )
    }
}

/// What the decision engine concluded about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, Default)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing to do.
    #[default]
    Pass,
    /// Leave in place and mark with a keyword (`$Phishing` by default,
    /// never `\Flagged`: clients show that as "important").
    Flag,
    /// Spam, not a threat: move to the account's Junk folder (SPECIAL-USE
    /// `\Junk`) with the `$Junk` keyword, or only the keyword without one.
    Junk,
    /// Move to the quarantine folder (phishing, malware, fail-closed).
    Quarantine,
    /// Move to the hold folder (Postern never expunges on a verdict).
    Delete,
}

impl Verdict {
    /// Stable lowercase name used in the database and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Flag => "flag",
            Verdict::Junk => "junk",
            Verdict::Quarantine => "quarantine",
            Verdict::Delete => "delete",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pass" => Verdict::Pass,
            "flag" => Verdict::Flag,
            "junk" => Verdict::Junk,
            "quarantine" => Verdict::Quarantine,
            "delete" => Verdict::Delete,
            _ => return None,
        })
    }
}

impl Verdict {
    /// Every verdict, mildest first.
    pub const ALL: [Verdict; 5] = [Verdict::Pass, Verdict::Flag, Verdict::Junk, Verdict::Quarantine, Verdict::Delete];
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict together with the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Decision {
    /// The outcome.
    pub verdict: Verdict,
    /// Machine-readable tags (e.g. `LIST_SENDER_BLOCKED`) that led to it.
    pub tags: Vec<String>,
    /// Human-readable explanation, shown in logs and the audit trail.
    pub reason: String,
    /// Total score from the policy table.
    #[serde(default)]
    pub score: f64,
    /// What each scanner reported.
    #[serde(default)]
    pub reports: Vec<ScannerReport>,
    /// What the message points at (URLs, sender, IPs, hashes), kept so a
    /// later feed entry or IOC can find the mail it concerns (claw-back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observables: Vec<Observable>,
}

/// One thing a message points at, as a later indicator would name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Observable {
    /// `url`, `domain`, `ip`, `sha256`, `email` or `tlsh` (the body's fuzzy hash).
    pub kind: String,
    /// Normalised value.
    pub value: String,
}

impl Decision {
    /// A pass with a short reason.
    pub fn pass(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Pass,
            reason: reason.into(),
            ..Default::default()
        }
    }
}

/// One observation of a scanner: a tag plus optional detail. Scanners never
/// score; scores live in the policy table under `rules/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Tag, e.g. `AV_VIRUS`.
    pub tag: String,
    /// Evidence (virus name, URL, symbol list…).
    pub detail: Option<String>,
    /// The threat-intelligence indicator that matched, recorded as a sighting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<IndicatorRef>,
}

/// An operator indicator (IOC) to store: same kind, value and source
/// updates the existing one. Validated and normalised by `intel::ioc`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewIndicator {
    /// `ip`, `cidr`, `domain`, `url`, `sha256` or `email`.
    pub kind: String,
    /// Normalised value.
    pub value: String,
    /// Who reported it.
    pub source: String,
    /// 0–100.
    pub confidence: u8,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// RFC 3339; `None` never expires.
    pub expires_at: Option<String>,
    /// Known false positive: suppresses matches.
    pub false_positive: bool,
    /// Free text.
    pub note: Option<String>,
}

/// Which indicator matched what: a feed entry or an operator IOC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorRef {
    /// Feed name or IOC source.
    pub source: String,
    /// IOC id, when the match was an operator indicator.
    pub ioc: Option<i64>,
    /// Indicator kind (`url`, `domain`, …).
    pub kind: String,
    /// The message's value that matched.
    pub value: String,
}

impl Finding {
    /// A finding with detail.
    pub fn new(tag: &str, detail: impl Into<String>) -> Self {
        Self {
            tag: tag.to_string(),
            detail: Some(detail.into()),
            indicator: None,
        }
    }
}

/// What one scanner did for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerReport {
    /// Scanner id.
    pub scanner: String,
    /// Whether its failure forces quarantine.
    pub critical: bool,
    /// Findings (empty on error).
    pub findings: Vec<Finding>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Error or timeout, if it did not answer.
    pub error: Option<String>,
}

/// An IMAP-side action Postern intends to perform. Stored durably before it
/// is executed so that a crash in between resumes it exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Move the message to `folder` (quarantine).
    Quarantine {
        /// Destination folder.
        folder: String,
    },
    /// Move the message to the hold folder instead of expunging it.
    Hold {
        /// Destination folder.
        folder: String,
    },
    /// Add keywords (the verdict's keyword and `$PosternFlagged`); never
    /// `\Flagged`.
    Flag {
        /// Keyword to add when PERMANENTFLAGS allows it.
        keyword: String,
    },
    /// Add `$Junk` and move to the account's Junk folder. `folder: None`
    /// means the account has no Junk folder (none advertised as `\Junk`,
    /// or `junk_folder: off`): the keyword alone marks it, in place.
    Junk {
        /// Destination folder, as resolved when the action was planned.
        folder: Option<String>,
    },
}

impl Action {
    /// Short stable name for the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Quarantine { .. } => "quarantine",
            Action::Hold { .. } => "hold",
            Action::Flag { .. } => "flag",
            Action::Junk { .. } => "junk",
        }
    }

    /// The folder the message ends up in, for moving actions.
    pub fn destination(&self) -> Option<&str> {
        match self {
            Action::Quarantine { folder } | Action::Hold { folder } => Some(folder),
            Action::Junk { folder } => folder.as_deref(),
            Action::Flag { .. } => None,
        }
    }
}

/// Whether an account's verdicts are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Act on verdicts.
    #[default]
    Enforce,
    /// Scan and record, never act.
    Shadow,
}

/// Something that changed, for live views. Carries only ids: listeners
/// read the current row from the store, so an event can never be stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A message was scanned and recorded.
    Scanned {
        /// Message row id.
        id: i64,
    },
    /// A stored message changed: moved, released, deleted, rescanned.
    Updated {
        /// Message row id.
        id: i64,
    },
    /// A re-check pulled delivered mail back into quarantine.
    Clawback {
        /// Message row id.
        id: i64,
    },
}

/// Sender side of the event bus; sending with no listener is fine.
pub type EventSender = tokio::sync::broadcast::Sender<Event>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_names_round_trip() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verdict::parse("nope"), None);
        assert!(Verdict::Flag < Verdict::Junk && Verdict::Junk < Verdict::Quarantine);
    }

    #[test]
    fn action_serialises_with_kind_tag() {
        let a = Action::Quarantine {
            folder: "Quarantine".into(),
        };
        let s = serde_json::to_string(&a).unwrap();
        assert_eq!(s, r#"{"kind":"quarantine","folder":"Quarantine"}"#);
        assert_eq!(serde_json::from_str::<Action>(&s).unwrap(), a);
    }
}
