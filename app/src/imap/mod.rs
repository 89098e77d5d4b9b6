//! IMAP: connections (TLS, STARTTLS, timeouts), the session operations
//! Postern needs, and one IDLE cycle. Listeners and the manager that join
//! IMAP with the store live in `crate::manager`.

mod conn;
mod folder;
mod folders;
mod guard;
mod idle;
mod names;
mod plain;
mod quirks;
mod sasl;
mod session;
mod special_use;
mod stream;
mod tls;

pub use conn::{Conn, DEFAULT_MAX_LITERAL, Login};
pub use folder::{FolderSignals, FolderStatus};
pub use folders::{FolderCheck, check_folders};
pub use guard::LiteralRefused;
pub use idle::{IdleOutcome, IdleTimers};
pub use names::{Namespace, decode_mutf7, encode_mutf7, quote};
pub use plain::server_text;
pub use session::{Fetched, MoveHow, MoveOutcome, SearchKey, Selected, flag_name, uid_set};
pub use tls::{fingerprint_of, parse_fingerprint};

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
    /// TLS setup is unusable (CA file, fingerprint, server name) or the
    /// server's certificate was refused; the text says why in plain words.
    #[error("TLS: {0}")]
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
    /// The server announced a literal over the message limit; the
    /// connection is unusable afterwards (the literal is still on the wire).
    #[error("{0}")]
    LiteralTooLarge(LiteralRefused),
    /// Error from the IMAP client library.
    #[error("imap: {}", plain::client_text(.0))]
    Client(async_imap::error::Error),
    /// Transport I/O error.
    #[error("i/o: {}", plain::io_text(.0))]
    Io(std::io::Error),
    /// A folder Postern needs (quarantine, hold) is missing and the server
    /// refused to create it: nothing can be moved there until it exists.
    #[error("folder {folder:?} cannot be created: {detail}")]
    FolderUnavailable {
        /// The configured folder name.
        folder: String,
        /// What the server said, with the namespace tried.
        detail: String,
    },
    /// A command argument cannot be sent on this connection.
    #[error("cannot send argument: {0}")]
    Argument(String),
    /// The server lacks a capability needed for this action.
    #[error("server lacks {0}")]
    Unsupported(&'static str),
    /// Not safe to do now, and not the message's failure: a move on a
    /// server without UIDPLUS while other mail in the folder is marked
    /// `\Deleted`. Kept pending and tried again; never counted against
    /// the attempt cap.
    #[error("waiting: {0}")]
    Deferred(String),
}

impl From<std::io::Error> for ImapError {
    fn from(e: std::io::Error) -> Self {
        match refusal(&e) {
            Some(r) => ImapError::LiteralTooLarge(r),
            None => ImapError::Io(e),
        }
    }
}

impl From<async_imap::error::Error> for ImapError {
    fn from(e: async_imap::error::Error) -> Self {
        let refused = match &e {
            async_imap::error::Error::Io(io) => refusal(io),
            _ => None,
        };
        match refused {
            Some(r) => ImapError::LiteralTooLarge(r),
            None => ImapError::Client(e),
        }
    }
}

/// The guard's refusal, carried through async-imap as an I/O error.
fn refusal(e: &std::io::Error) -> Option<LiteralRefused> {
    e.get_ref().and_then(|i| i.downcast_ref::<LiteralRefused>()).copied()
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ImapError>;
