//! In-line mode (issue 19): Postern as a Postfix milter. The SMTP
//! transaction's envelope and message go through the same pipeline and
//! policy as mail found over IMAP; the verdict becomes the SMTP reply
//! ([`decide`]) and is recorded in the same store before Postfix hears it.
//! The milter protocol itself is indymilter's.

pub mod decide;
mod session;
pub mod slots;

use crate::config::{MilterListen, MilterSettings};
use crate::domain::EventSender;
use crate::scan::LiveDecider;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a milter connection may sit without a command. Postfix keeps
/// it open for the whole SMTP session, which may idle up to its
/// `smtpd_timeout` (300 s) between commands; past 10 minutes it is dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Milter failures at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MilterError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The milter stopped with an I/O error.
    #[error("milter failed: {0}")]
    Run(#[from] std::io::Error),
}

/// What every milter session shares.
pub struct Milter {
    /// The pipeline new scans use.
    pub live: Arc<LiveDecider>,
    /// Where decisions are recorded.
    pub store: Store,
    /// Live updates (dashboard, notifications).
    pub events: EventSender,
    /// Replies per verdict, timeouts.
    pub settings: MilterSettings,
    /// Messages larger than this are not scanned (`POSTERN_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: u32,
    /// The EML store the IMAP path keeps quarantined copies in; held mail
    /// is copied there too. `None`: no copies.
    pub eml_dir: Option<std::path::PathBuf>,
}

/// A bound milter socket, ready to serve.
pub enum Bound {
    /// TCP.
    Inet(tokio::net::TcpListener),
    /// Unix socket.
    Unix(tokio::net::UnixListener),
}

/// Binds `listen`. A stale unix socket file from an earlier run is
/// replaced; the new one is made group-writable (0660) so the MTA's group
/// can connect.
pub async fn bind(listen: &MilterListen) -> Result<Bound, MilterError> {
    match listen {
        MilterListen::Inet(a) => tokio::net::TcpListener::bind(a)
            .await
            .map(Bound::Inet)
            .map_err(|source| MilterError::Bind {
                addr: format!("inet:{a}"),
                source,
            }),
        MilterListen::Unix(p) => {
            let err = |source| MilterError::Bind {
                addr: format!("unix:{}", p.display()),
                source,
            };
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket()) {
                std::fs::remove_file(p).map_err(err)?;
            }
            let l = tokio::net::UnixListener::bind(p).map_err(err)?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
            Ok(Bound::Unix(l))
        }
    }
}

impl Bound {
    /// The TCP address, for logs and tests.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Bound::Inet(l) => l.local_addr().ok(),
            Bound::Unix(_) => None,
        }
    }
}

/// Serves milter sessions until `shutdown` is cancelled.
pub async fn serve(bound: Bound, milter: Arc<Milter>, shutdown: CancellationToken) -> Result<(), MilterError> {
    let max_connections = milter.settings.max_connections;
    let callbacks = session::callbacks(milter);
    let config = indymilter::Config {
        actions: session::ACTIONS,
        connection_timeout: IDLE_TIMEOUT,
        max_connections,
    };
    let stop = async move { shutdown.cancelled().await };
    let slots = slots::Slots::new(max_connections);
    match bound {
        Bound::Inet(l) => indymilter::run(slots::Counted::new(l, slots), callbacks, config, stop).await?,
        Bound::Unix(l) => indymilter::run(slots::Counted::new(l, slots), callbacks, config, stop).await?,
    }
    Ok(())
}
