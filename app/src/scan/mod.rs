//! Deciding what a message is. The IMAP side hands raw bytes to a
//! [`Decider`] and gets a [`Decision`] back; nothing here touches the store,
//! the network of the mailbox, or the web layer.

mod headers;
mod policy;
pub mod tags;

pub use headers::{Envelope, envelope};
pub use policy::ListPolicy;

use crate::domain::Decision;
use futures::future::BoxFuture;

/// Why a decision could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// A scanner that must answer did not (fail-closed).
    #[error("scanner {scanner} failed: {detail}")]
    Scanner {
        /// Scanner id.
        scanner: &'static str,
        /// What went wrong.
        detail: String,
    },
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
/// swapped at runtime (built-in policy now, the scanning pipeline later, and
/// test doubles through the library API).
pub trait Decider: Send + Sync {
    /// Short identifier for logs.
    fn id(&self) -> &'static str;
    /// Decides on one message.
    fn decide<'a>(&'a self, req: ScanRequest<'a>) -> BoxFuture<'a, Result<Decision, ScanError>>;
}
