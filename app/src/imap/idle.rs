//! One IDLE cycle (RFC 2177), written on async-imap's raw command API so
//! every wait is bounded and a silent server is detected:
//! - the continuation must arrive within the probe timeout;
//! - after `probe_every` of silence the cycle proves the server is still
//!   there: DONE, then IDLE again, each answered within the probe timeout,
//!   so a half-open connection is found within `probe_every + probe_timeout`
//!   instead of at the next renewal (issue 18, item 9);
//! - the wait ends after `renew` (servers may drop IDLE after 30 minutes)
//!   and the caller catches up.
//!
//! Any server response wakes the cycle; the caller then does a UID catch-up
//! whatever the wake was, so a missed or coalesced EXISTS costs nothing.

use super::conn::{Conn, deadline};
use super::{ImapError, Result};
use async_imap::imap_proto::{RequestId, Response, Status};
use std::time::Duration;
use tokio::time::Instant;
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

/// The clocks of one IDLE cycle.
#[derive(Debug, Clone, Copy)]
pub struct IdleTimers {
    /// How long the cycle lasts before the caller catches up.
    pub renew: Duration,
    /// Silence after which the server is asked to prove it is there.
    pub probe_every: Duration,
    /// How long the server has to answer IDLE or DONE.
    pub probe_timeout: Duration,
}

/// What ended one wait inside the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Done(IdleOutcome),
    Probe,
}

impl Conn {
    /// Runs one IDLE cycle on the selected mailbox.
    pub async fn idle(&mut self, timers: IdleTimers, cancel: &CancellationToken) -> Result<IdleOutcome> {
        let renew_at = Instant::now() + timers.renew;
        let mut stage = ("IDLE continuation", "IDLE DONE");
        loop {
            let (tag, woken) = self.idle_begin(timers.probe_timeout, stage.0).await?;
            let wait = if woken {
                Wait::Done(IdleOutcome::Woken)
            } else {
                let left = renew_at.saturating_duration_since(Instant::now());
                let wait = left.min(timers.probe_every);
                tokio::select! {
                    _ = cancel.cancelled() => Wait::Done(IdleOutcome::Cancelled),
                    r = tokio::time::timeout(wait, self.session.read_response()) => match r {
                        Err(_) if wait < left => Wait::Probe,
                        Err(_) => Wait::Done(IdleOutcome::Renew),
                        Ok(Err(e)) => return Err(e.into()),
                        Ok(Ok(None)) => return Err(ImapError::ConnectionLost),
                        Ok(Ok(Some(resp))) => match resp.parsed() {
                            Response::Data { status: Status::Bye, outcome } => {
                                return Err(ImapError::Bye(outcome.information.as_deref().unwrap_or("").to_string()));
                            }
                            other => {
                                self.note(other);
                                Wait::Done(IdleOutcome::Woken)
                            }
                        },
                    },
                }
            };
            if wait == Wait::Probe {
                stage = ("IDLE liveness probe (IDLE again)", "IDLE liveness probe (DONE)");
            }
            let reported = self.idle_end(&tag, timers.probe_timeout, stage.1).await?;
            match wait {
                Wait::Done(outcome) => return Ok(outcome),
                // Servers that never push during IDLE (GNU imap4d) report
                // new mail only with the tagged reply to DONE: the probe
                // is then the only wake there is.
                Wait::Probe if reported => return Ok(IdleOutcome::Woken),
                Wait::Probe => tracing::debug!("IDLE liveness probe answered"),
            }
        }
    }

    /// Sends IDLE and waits for "+ idling"; updates that come first still
    /// count as a wake.
    async fn idle_begin(&mut self, limit: Duration, what: &str) -> Result<(RequestId, bool)> {
        let tag = self.session.run_command("IDLE").await?;
        let mut woken = false;
        deadline(limit, what, async {
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
                    other => {
                        self.note(other);
                        woken = true;
                    }
                }
            }
        })
        .await?;
        Ok((tag, woken))
    }

    /// Sends DONE and waits for the tagged completion of `tag`; true when
    /// the server reported mailbox changes before it (anything but a
    /// plain untagged status such as "* OK Still here").
    async fn idle_end(&mut self, tag: &RequestId, limit: Duration, what: &str) -> Result<bool> {
        self.session.run_command_untagged("DONE").await?;
        let mut reported = false;
        deadline(limit, what, async {
            loop {
                let Some(resp) = self.session.read_response().await? else {
                    return Err(ImapError::ConnectionLost);
                };
                match resp.parsed() {
                    Response::Done { tag: got, status, outcome } if got == tag => {
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
                    other => {
                        reported |= !matches!(other, Response::Data { .. });
                        self.note(other);
                    }
                }
            }
        })
        .await?;
        Ok(reported)
    }
}
