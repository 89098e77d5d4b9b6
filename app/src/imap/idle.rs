//! One IDLE cycle (RFC 2177), written on async-imap's raw command API so
//! every wait is bounded and a silent server is detected:
//! - the continuation must arrive within the command timeout;
//! - the wait ends after `renew` (servers may drop IDLE after 30 minutes);
//! - DONE must be answered within the command timeout, or the connection is
//!   treated as half-open and dropped.
//!
//! Any server response wakes the cycle; the caller then does a UID catch-up
//! whatever the wake was, so a missed or coalesced EXISTS costs nothing.

use super::conn::{Conn, deadline};
use super::{ImapError, Result};
use async_imap::imap_proto::{Response, Status};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why an IDLE cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleOutcome {
    /// The server reported something.
    Woken,
    /// The renew interval elapsed.
    Renew,
    /// Shutdown was requested.
    Cancelled,
}

impl Conn {
    /// Runs one IDLE cycle on the selected mailbox.
    pub async fn idle(&mut self, renew: Duration, cancel: &CancellationToken) -> Result<IdleOutcome> {
        let t = self.timeout;
        let tag = self.session.run_command("IDLE").await?;
        let mut woken = false;
        // Wait for "+ idling"; updates that come first still count as a wake.
        deadline(t, "IDLE continuation", async {
            loop {
                let Some(resp) = self.session.read_response().await? else {
                    return Err(ImapError::ConnectionLost);
                };
                match resp.parsed() {
                    Response::Continue(_) => return Ok(()),
                    Response::Done { tag: got, outcome, .. } if *got == tag => {
                        return Err(ImapError::Refused {
                            command: "IDLE".into(),
                            detail: outcome.information.as_deref().unwrap_or("").to_string(),
                        });
                    }
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => {
                        return Err(ImapError::Bye(outcome.information.as_deref().unwrap_or("").to_string()));
                    }
                    _ => woken = true,
                }
            }
        })
        .await?;

        let outcome = if woken {
            IdleOutcome::Woken
        } else {
            tokio::select! {
                _ = cancel.cancelled() => IdleOutcome::Cancelled,
                r = tokio::time::timeout(renew, self.session.read_response()) => match r {
                    Err(_) => IdleOutcome::Renew,
                    Ok(Err(e)) => return Err(e.into()),
                    Ok(Ok(None)) => return Err(ImapError::ConnectionLost),
                    Ok(Ok(Some(resp))) => match resp.parsed() {
                        Response::Data { status: Status::Bye, outcome } => {
                            return Err(ImapError::Bye(outcome.information.as_deref().unwrap_or("").to_string()));
                        }
                        _ => IdleOutcome::Woken,
                    },
                },
            }
        };

        self.session.run_command_untagged("DONE").await?;
        deadline(t, "IDLE DONE", async {
            loop {
                let Some(resp) = self.session.read_response().await? else {
                    return Err(ImapError::ConnectionLost);
                };
                match resp.parsed() {
                    Response::Done { tag: got, status, outcome } if *got == tag => {
                        return match status {
                            Status::Ok => Ok(()),
                            _ => Err(ImapError::Refused {
                                command: "IDLE".into(),
                                detail: outcome.information.as_deref().unwrap_or("").to_string(),
                            }),
                        };
                    }
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => {
                        return Err(ImapError::Bye(outcome.information.as_deref().unwrap_or("").to_string()));
                    }
                    _ => {}
                }
            }
        })
        .await?;
        Ok(outcome)
    }
}
