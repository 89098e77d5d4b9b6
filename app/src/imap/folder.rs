//! Is the selected folder still the folder Postern selected? (issue 15,
//! defects 1 and 6)
//!
//! A folder deleted and recreated by another client while Postern sits in
//! it is not always announced: Cyrus sends the old session only
//! `* 1 EXPUNGE`, and Courier keeps serving the new folder under the old
//! UIDVALIDITY. Only a fresh look (STATUS, or a new SELECT) tells. So the
//! listener asks after every wake, and this module also notes the response
//! codes that say it outright: `[UIDVALIDITY n]` and `[CLOSED]` (RFC 7162).
//!
//! It also finds the highest UID when SELECT sent no UIDNEXT (Courier), so
//! `start_at: new` does not take every existing message for new mail.

use super::conn::{Conn, deadline};
use super::{ImapError, Result};
use async_imap::imap_proto::{MailboxDatum, Response, ResponseCode, Status, StatusAttribute};
use async_imap::types::UnsolicitedResponse;
use futures::TryStreamExt;

/// What the server said, unasked, about the selected folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderSignals {
    /// A `[UIDVALIDITY n]` response code outside SELECT.
    pub uidvalidity: Option<u32>,
    /// `[CLOSED]`: the folder is no longer selected.
    pub closed: bool,
    /// An EXPUNGE, or an EXISTS lower than before: a folder that shrank
    /// may have been deleted and recreated.
    pub shrank: bool,
}

impl FolderSignals {
    /// Notes one untagged response. imap-proto does not know `[CLOSED]`, so
    /// it arrives as the start of the response text.
    pub(super) fn note(&mut self, resp: &Response<'_>, exists: &mut Option<u32>) {
        match resp {
            Response::Data { status, outcome } if *status != Status::Bye => {
                if let Some(ResponseCode::UidValidity(v)) = &outcome.code {
                    self.uidvalidity = Some(*v);
                }
                let text = outcome.information.as_deref().unwrap_or("").trim_start();
                if outcome.code.is_none() && text.get(..8).is_some_and(|t| t.eq_ignore_ascii_case("[CLOSED]")) {
                    self.closed = true;
                }
            }
            Response::Expunge(_) => self.shrank = true,
            Response::MailboxData(MailboxDatum::Exists(n)) => {
                if exists.is_some_and(|before| *n < before) {
                    self.shrank = true;
                }
                *exists = Some(*n);
            }
            _ => {}
        }
    }

    /// Whether anything here calls for a fresh look at the folder.
    pub fn suspicious(&self) -> bool {
        self.uidvalidity.is_some() || self.closed || self.shrank
    }
}

/// What STATUS reports for a folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderStatus {
    /// UIDVALIDITY, when sent.
    pub uidvalidity: Option<u32>,
    /// UIDNEXT, when sent.
    pub uid_next: Option<u32>,
}

impl Conn {
    /// `STATUS mailbox (UIDVALIDITY UIDNEXT)`. Read by hand rather than
    /// with async-imap's `status`, which drops the answer when the server
    /// spells the mailbox name differently from the request.
    pub async fn status(&mut self, mailbox: &str) -> Result<FolderStatus> {
        let t = self.timeout;
        // The server's own name for the folder (namespace, modified UTF-7).
        let target = self.resolved(mailbox).to_string();
        let arg = self.astring(&self.wire_name(&target))?;
        let command = format!("STATUS {arg} (UIDVALIDITY UIDNEXT)");
        deadline(t, "STATUS", async {
            let tag = self.session.run_command(&command).await?;
            let mut out = FolderStatus::default();
            loop {
                let Some(resp) = self.session.read_response().await? else {
                    return Err(ImapError::ConnectionLost);
                };
                match resp.parsed() {
                    Response::Done { tag: got, status, outcome } if *got == tag => {
                        return match status {
                            Status::Ok => Ok(out),
                            _ => Err(ImapError::Refused {
                                command: format!("STATUS {mailbox}"),
                                detail: outcome.information.as_deref().unwrap_or("").to_string(),
                            }),
                        };
                    }
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => return Err(ImapError::Bye(outcome.information.as_deref().unwrap_or("").to_string())),
                    // One mailbox was asked for, so any STATUS line is its answer.
                    Response::MailboxData(MailboxDatum::Status { status, .. }) => {
                        for a in status {
                            match a {
                                StatusAttribute::UidValidity(v) => out.uidvalidity = Some(*v),
                                StatusAttribute::UidNext(n) => out.uid_next = Some(*n),
                                _ => {}
                            }
                        }
                    }
                    other => self.note(other),
                }
            }
        })
        .await
    }

    /// The UIDNEXT a SELECT that sent none would have sent: one past the
    /// UID of its last message (`FETCH exists (UID)`, so mail delivered
    /// since the SELECT still counts as new), else STATUS's UIDNEXT, else 1
    /// for an empty folder.
    pub async fn uid_next_fallback(&mut self, mailbox: &str, exists: u32) -> Result<u32> {
        if exists == 0 {
            return Ok(1);
        }
        let t = self.timeout;
        let last = deadline(t, "FETCH (UID)", async {
            let fetched: Vec<_> = self.session.fetch(exists.to_string(), "(UID)").await?.try_collect().await?;
            Ok(fetched.iter().filter_map(|f| f.uid).max())
        })
        .await;
        match last {
            Ok(Some(uid)) => return Ok(uid.saturating_add(1)),
            Ok(None) => {}
            Err(e @ (ImapError::Timeout { .. } | ImapError::ConnectionLost | ImapError::Bye(_))) => return Err(e),
            Err(e) => tracing::debug!(error = %e, "FETCH (UID) of the last message failed; asking STATUS"),
        }
        self.status(mailbox)
            .await?
            .uid_next
            .ok_or_else(|| ImapError::Protocol(format!("{mailbox}: neither SELECT, FETCH nor STATUS tells the next UID")))
    }

    /// Notes an untagged response read outside async-imap's own parsers
    /// (IDLE, STATUS).
    pub(super) fn note(&mut self, resp: &Response<'_>) {
        let mut exists = self.exists;
        self.signals.note(resp, &mut exists);
        self.exists = exists;
    }

    /// Folder signals seen since the last call, including those queued by
    /// async-imap while other commands ran.
    pub fn take_signals(&mut self) -> FolderSignals {
        self.drain_unsolicited();
        std::mem::take(&mut self.signals)
    }

    /// Empties the unsolicited-response queue (async-imap drops items past
    /// 100), noting folder signals, and reports whether any item signalled
    /// a mailbox change.
    pub fn drain_unsolicited(&mut self) -> bool {
        let mut changed = false;
        while let Ok(r) = self.session.unsolicited_responses.try_recv() {
            match r {
                UnsolicitedResponse::Exists(n) => {
                    changed = true;
                    if self.exists.is_some_and(|before| n < before) {
                        self.signals.shrank = true;
                    }
                    self.exists = Some(n);
                }
                UnsolicitedResponse::Expunge(_) => {
                    changed = true;
                    self.signals.shrank = true;
                }
                UnsolicitedResponse::Recent(_) => changed = true,
                UnsolicitedResponse::Other(data) => {
                    self.note(data.parsed());
                    changed |= self.signals.suspicious();
                }
                _ => {}
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noted(lines: &[&str], mut exists: Option<u32>) -> FolderSignals {
        let mut s = FolderSignals::default();
        for l in lines {
            let (_, resp) = Response::parse(l.as_bytes()).unwrap();
            s.note(&resp, &mut exists);
        }
        s
    }

    #[test]
    fn issue_15_response_codes_that_say_the_folder_changed_are_noted() {
        assert_eq!(noted(&["* OK [UIDVALIDITY 9] new\r\n"], None).uidvalidity, Some(9));
        assert!(noted(&["* OK [CLOSED] Previous mailbox closed\r\n"], None).closed);
        assert!(noted(&["* 1 EXPUNGE\r\n"], Some(3)).shrank);
        assert!(noted(&["* 2 EXISTS\r\n"], Some(3)).shrank, "EXISTS went down");
        let calm = noted(&["* 4 EXISTS\r\n", "* 1 RECENT\r\n", "* OK still here\r\n"], Some(3));
        assert!(!calm.suspicious(), "{calm:?}");
    }
}
