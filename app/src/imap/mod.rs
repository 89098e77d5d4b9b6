//! IMAP: connections (TLS, STARTTLS, timeouts), the session operations
//! Postern needs, and one IDLE cycle. Listeners and the manager that join
//! IMAP with the store live in `crate::manager`.

mod conn;
mod idle;
mod session;
mod stream;
mod tls;

pub use conn::Conn;
pub use idle::IdleOutcome;
pub use session::{Fetched, MoveOutcome, Selected, flag_name, quote, uid_set};

/// IMAP failures. All of them end in a reconnect, never a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImapError {
    /// TCP or TLS transport failed.
    #[error("connection to {addr} failed: {source}")]
    Connect {
        /// host:port
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// TLS configuration (CA file, server name) is unusable.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The server rejected the credentials.
    #[error("login rejected for {user}: {detail}")]
    Auth {
        /// Login name.
        user: String,
        /// Server text.
        detail: String,
    },
    /// A command or IDLE's DONE did not complete in time (half-open connection).
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// Seconds waited.
        secs: u64,
    },
    /// The server said BYE.
    #[error("server closed the session: {0}")]
    Bye(String),
    /// The server answered NO or BAD.
    #[error("server refused {command}: {detail}")]
    Refused {
        /// Command sent.
        command: String,
        /// Server text.
        detail: String,
    },
    /// The server sent something we cannot use.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The connection dropped.
    #[error("connection lost")]
    ConnectionLost,
    /// Error from the IMAP client library.
    #[error("imap: {0}")]
    Client(#[from] async_imap::error::Error),
    /// Transport I/O error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server lacks a capability needed for this action.
    #[error("server lacks {0}")]
    Unsupported(&'static str),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ImapError>;
