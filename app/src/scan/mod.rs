//! Deciding what a message is. The IMAP side hands raw bytes to a
//! [`Decider`] and gets a [`Decision`] back. The real decider is the
//! [`Pipeline`]: the message is parsed once into a [`ScanInput`], every
//! enabled [`Scanner`] runs concurrently under its own enforced deadline,
//! and the [`Policy`] turns their tags into a verdict. Nothing here touches
//! the store, the mailbox or the web layer.

pub mod ai;
pub mod archive;
pub mod attach;
pub mod budget;
pub mod calendar;
pub mod category;
mod explain;
pub mod fuzzy;
mod headers;
pub mod htmlbound;
pub mod input;
#[cfg(test)]
mod issue18_tests;
pub mod learn;
mod live;
pub mod media;
pub mod office;
pub mod pdf;
mod pipeline;
mod policy;
mod prepared;
pub mod qr;
pub mod registry;
pub mod scanners;
pub mod smtp;
pub mod urls;

pub use explain::explain;
pub use headers::{Dates, Envelope, Stamp, envelope};
pub use input::{InputOptions, ScanInput};
pub use live::LiveDecider;
pub use pipeline::Pipeline;
pub use policy::{DEFAULT_POLICY, Policy, PolicyError, Weight};
pub use prepared::Prepared;
#[cfg(test)]
pub(crate) use prepared::count::parses as prepared_parses;
pub use smtp::SmtpEnvelope;

use crate::domain::{Decision, Finding};
use futures::future::BoxFuture;
use std::time::Duration;

/// Why a scan or decision could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A scanner failed.
    #[error("scanner {scanner} failed: {detail}")]
    Scanner {
        /// Scanner id.
        scanner: &'static str,
        /// What went wrong.
        detail: String,
    },
}

impl ScanError {
    /// Shorthand for a scanner failure.
    pub fn scanner(scanner: &'static str, detail: impl std::fmt::Display) -> Self {
        ScanError::Scanner {
            scanner,
            detail: detail.to_string(),
        }
    }
}

/// Input to a decision: the raw message and where it was found.
#[derive(Debug, Clone, Copy)]
pub struct ScanRequest<'a> {
    /// Account name.
    pub account: &'a str,
    /// Folder.
    pub mailbox: &'a str,
    /// Raw RFC 5322 bytes.
    pub raw: &'a [u8],
}

/// Turns a message into a verdict. Object-safe so implementations can be
/// swapped at runtime (the pipeline, or test doubles through the library API).
pub trait Decider: Send + Sync {
    /// Short identifier for logs.
    fn id(&self) -> &'static str;
    /// Decides on one message.
    fn decide<'a>(&'a self, req: ScanRequest<'a>) -> BoxFuture<'a, Result<Decision, ScanError>>;

    /// Parses a message once for everything that reads it (issue 21): the
    /// worker takes its envelope from the result and hands it back to
    /// [`Decider::decide_prepared`]. The default reads the headers only,
    /// for deciders that look at raw bytes.
    fn prepare<'a>(&'a self, raw: std::sync::Arc<Vec<u8>>) -> BoxFuture<'a, Prepared> {
        Box::pin(async move { Prepared::headers_only(raw) })
    }

    /// Decides on a message [`Decider::prepare`] parsed, without parsing
    /// it again.
    fn decide_prepared<'a>(&'a self, account: &'a str, mailbox: &'a str, p: &'a Prepared) -> BoxFuture<'a, Result<Decision, ScanError>> {
        self.decide(ScanRequest {
            account,
            mailbox,
            raw: &p.raw,
        })
    }
}

/// What a scanner's failure means for the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Ignore the failure (recorded, no effect on the verdict).
    Open,
    /// Quarantine the message: it is never passed unscanned.
    Closed,
}

/// One check. Scanners report tags, never scores.
pub trait Scanner: Send + Sync {
    /// Stable id, e.g. `rspamd`.
    fn id(&self) -> &'static str;
    /// Deadline; the pipeline enforces it.
    fn timeout(&self) -> Duration;
    /// Fail-open or fail-closed.
    fn failure_mode(&self) -> FailureMode;
    /// Every tag this scanner can emit (checked against the policy table).
    fn tags(&self) -> &'static [&'static str];
    /// CPU-bound work on the parsed input (no network): the pipeline runs
    /// it on the blocking pool, and a timeout means the message made it
    /// work that hard, which is scored (`SCAN_BUDGET_EXCEEDED`) instead of
    /// ignored. Network scanners keep the default: their timeouts follow
    /// their fail-open or fail-closed mode.
    fn cpu_bound(&self) -> bool {
        false
    }
    /// Scans one message.
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>>;
    /// Checks the scanner can work right now (a ping for network
    /// scanners); the answer is a short status line for the health page.
    fn health(&self) -> BoxFuture<'_, Result<String, ScanError>> {
        Box::pin(async { Ok("built in".to_string()) })
    }
}
