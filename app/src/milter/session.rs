//! One milter connection: collects the envelope and the message stage by
//! stage, then decides at end of message. Every stage before that only
//! stores what it is told and answers at once, so Postfix's per-stage
//! `milter_command_timeout` is never at risk; the end-of-message scan runs
//! under `POSTERN_MILTER_TIMEOUT_SECS`, below `milter_content_timeout`.

use super::Milter;
use super::decide::{OVERSIZE_TEXT, OWN_HEADERS, REJECT_TEXT, TEMPFAIL_TEXT, headers_for, instead_of_hold, reply_for};
use crate::config::MilterReply;
use crate::domain::{Decision, Event, Verdict};
use crate::scan::SmtpEnvelope;
use crate::store::{MessageMeta, MilterRecord, body_sha256};
use indymilter::{Actions, Callbacks, ContextActions, EomContext, ProtoOpts, SetErrorReply, SocketInfo, Status};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::Arc;
use tracing::{info, warn};

/// What the milter may do at end of message: add headers, remove forged
/// copies of its own, and put mail on hold. An MTA may offer less; the
/// session then does without (see [`negotiated`]).
pub(super) const ACTIONS: Actions = Actions::ADD_HEADER.union(Actions::CHANGE_HEADER).union(Actions::QUARANTINE);

/// Whether the reduced-actions warning was logged (once per process: an
/// MTA negotiates on every connection).
static WARNED_ACTIONS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The actions to use with an MTA that offers `offered`: ours, less what it
/// lacks. Postfix offers all of them; an MTA or test client that does not
/// is served all the same, and what it lacks is said once in the log
/// instead of the connection closing with nothing logged.
fn negotiated(offered: Actions) -> Actions {
    let use_ = ACTIONS & offered;
    if use_ != ACTIONS && !WARNED_ACTIONS.swap(true, std::sync::atomic::Ordering::Relaxed) {
        warn!(
            offered = ?offered,
            missing = ?(ACTIONS - use_),
            "the MTA does not offer every milter action Postern uses: without ADD_HEADER no verdict \
             headers are added, without CHANGE_HEADER forged X-Postern headers stay, and without \
             QUARANTINE a hold becomes a reject (threats) or headers (spam)"
        );
    }
    use_
}

/// State of one connection; the message part is reset at each MAIL FROM.
#[derive(Debug, Default)]
pub(super) struct Session {
    env: SmtpEnvelope,
    /// Headers and body as received, CRLF line endings.
    raw: Vec<u8>,
    /// Where the body starts in `raw`.
    body_at: usize,
    /// Bytes received, also past the limit.
    size: u64,
    /// Over the scan limit: `raw` is no longer kept.
    oversize: bool,
    /// How many of each of [`OWN_HEADERS`] the message already carries.
    own_seen: HashMap<&'static str, i32>,
    /// The actions the MTA agreed to for this connection.
    actions: Actions,
}

impl Session {
    fn new_message(&mut self, mail_from: Option<String>) {
        let (client_ip, helo, actions) = (self.env.client_ip, self.env.helo.take(), self.actions);
        *self = Session {
            env: SmtpEnvelope {
                client_ip,
                helo,
                mail_from,
                rcpt: Vec::new(),
            },
            actions,
            ..Default::default()
        };
    }

    fn push(&mut self, bytes: &[u8], max: u32) {
        self.size += bytes.len() as u64;
        if self.oversize {
            return;
        }
        if self.raw.len() + bytes.len() > max as usize {
            // Keep nothing: the message will not be scanned.
            self.oversize = true;
            self.raw = Vec::new();
            return;
        }
        self.raw.extend_from_slice(bytes);
    }
}

fn text(c: &CString) -> String {
    String::from_utf8_lossy(c.as_bytes()).into_owned()
}

/// `<a@b>` (maybe with ESMTP parameters after it) as `a@b`.
fn address(args: &[CString]) -> String {
    let a = args.first().map(text).unwrap_or_default();
    a.trim().trim_start_matches('<').trim_end_matches('>').to_string()
}

pub(super) fn callbacks(m: Arc<Milter>) -> Callbacks<Session> {
    let (on_header, on_body, on_eom) = (m.clone(), m.clone(), m);
    Callbacks::new()
        .on_negotiate(|cx, actions, opts| {
            cx.requested_actions = negotiated(actions);
            // Stages Postern has no callback for are asked to be skipped,
            // but only where the MTA can skip them; otherwise they arrive
            // and are answered "continue".
            cx.requested_opts &= opts | !(ProtoOpts::NO_DATA | ProtoOpts::NO_UNKNOWN);
            cx.data = Some(Session {
                actions: cx.requested_actions,
                ..Default::default()
            });
            Box::pin(async { Status::Continue })
        })
        .on_connect(|cx, _host, socket| {
            let client_ip = match socket {
                // An IPv4 client on a dual-stack socket is ::ffff:a.b.c.d.
                SocketInfo::Inet(a) => Some(a.ip().to_canonical()),
                _ => None,
            };
            let actions = cx.data.as_ref().map_or(ACTIONS, |s| s.actions);
            cx.data = Some(Session {
                env: SmtpEnvelope {
                    client_ip,
                    ..Default::default()
                },
                actions,
                ..Default::default()
            });
            Box::pin(async { Status::Continue })
        })
        .on_helo(|cx, helo| {
            if let Some(s) = cx.data.as_mut() {
                s.env.helo = Some(text(&helo));
            }
            Box::pin(async { Status::Continue })
        })
        .on_mail(|cx, args| {
            cx.data.get_or_insert_with(Session::default).new_message(Some(address(&args)));
            Box::pin(async { Status::Continue })
        })
        .on_rcpt(|cx, args| {
            if let Some(s) = cx.data.as_mut() {
                s.env.rcpt.push(address(&args));
            }
            Box::pin(async { Status::Continue })
        })
        .on_header(move |cx, name, value| {
            if let Some(s) = cx.data.as_mut() {
                let (name, value) = (text(&name), text(&value));
                if let Some(own) = OWN_HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&name)) {
                    *s.own_seen.entry(own).or_default() += 1;
                }
                // Folded values come with bare LFs; the message is kept in CRLF form.
                let value = value.replace("\r\n", "\n").replace('\n', "\r\n");
                s.push(
                    format!("{name}: {}\r\n", value.trim_start()).as_bytes(),
                    on_header.max_message_bytes,
                );
            }
            Box::pin(async { Status::Continue })
        })
        .on_eoh(|cx| {
            if let Some(s) = cx.data.as_mut() {
                s.push(b"\r\n", u32::MAX);
                s.body_at = s.raw.len();
            }
            Box::pin(async { Status::Continue })
        })
        .on_body(move |cx, chunk| {
            if let Some(s) = cx.data.as_mut() {
                s.push(&chunk, on_body.max_message_bytes);
            }
            Box::pin(async { Status::Continue })
        })
        .on_eom(move |cx| {
            let m = on_eom.clone();
            Box::pin(async move { end_of_message(cx, &m).await })
        })
        .on_abort(|cx| {
            if let Some(s) = cx.data.as_mut() {
                s.new_message(None);
            }
            Box::pin(async { Status::Continue })
        })
}

/// The decision for the finished message: scan (or not, if oversize),
/// record, then reply. Nothing is accepted unless its decision is stored.
async fn end_of_message(cx: &mut EomContext<Session>, m: &Milter) -> Status {
    let Some(s) = cx.data.as_mut() else {
        return Status::Tempfail;
    };
    let queue_id = cx.macros.get(c"i").map(|v| v.to_string_lossy().into_owned());
    let raw = std::mem::take(&mut s.raw);
    let (env, size, oversize, body_at) = (s.env.clone(), s.size, s.oversize, s.body_at);
    let own_seen: Vec<(&'static str, i32)> = s.own_seen.drain().collect();
    let actions = s.actions;
    s.new_message(None);

    let (decision, reply) = if oversize {
        let d = crate::worker::oversize_decision(size, m.max_message_bytes);
        // Unscanned mail going through must not look like scanned mail in
        // the log (found by a probe: only the header said so). The MTA's
        // own size limit at or below POSTERN_MAX_MESSAGE_BYTES avoids it.
        warn!(
            queue_id = ?queue_id,
            size,
            limit = m.max_message_bytes,
            reply = %m.settings.on_oversize,
            "message over the scan size limit: not scanned"
        );
        (d, m.settings.on_oversize)
    } else {
        let pipeline = m.live.current();
        match tokio::time::timeout(m.settings.scan_timeout, pipeline.scan_envelope(raw.clone(), &env)).await {
            Ok(d) => {
                let reply = reply_for(&d, &m.settings, &pipeline.policy().strong);
                (d, reply)
            }
            Err(_) => {
                let d = Decision {
                    verdict: Verdict::Quarantine,
                    reason: format!("the scan did not finish within {} s", m.settings.scan_timeout.as_secs()),
                    ..Default::default()
                };
                (d, m.settings.on_scanner_down)
            }
        }
    };

    let reply = if reply == MilterReply::Hold && !(actions.contains(Actions::QUARANTINE) && queue_id.is_some()) {
        let instead = instead_of_hold(&decision);
        warn!(
            queue_id = ?queue_id,
            quarantine_action = actions.contains(Actions::QUARANTINE),
            instead = %instead,
            "cannot hold this message (the MTA offered no quarantine action, or sent no queue id {{i}} to release it by)"
        );
        instead
    } else {
        reply
    };
    let headers = crate::scan::envelope(&raw);
    let sha256 = if oversize {
        format!("unscanned:{size}")
    } else {
        hex::encode(Sha256::digest(&raw))
    };
    let eml_path = match (&m.eml_dir, reply) {
        (Some(dir), MilterReply::Hold) if !oversize => keep_copy(dir, &sha256, &raw).await,
        _ => None,
    };
    let record = MilterRecord {
        queue_id: queue_id.clone(),
        client_ip: env.client_ip.map(|ip| ip.to_string()),
        helo: env.helo.clone(),
        mail_from: env.mail_from.clone(),
        rcpt: env.rcpt.clone(),
        meta: MessageMeta {
            message_id: headers.message_id,
            sha256,
            size,
            from: headers.from,
            subject: headers.subject,
            internal_date: None,
        },
        body_sha256: if oversize {
            format!("unscanned:{size}")
        } else {
            body_sha256(raw.get(body_at..).unwrap_or_default())
        },
        reply: reply.as_str(),
        eml_path,
    };
    match m.store.record_milter(&record, &decision).await {
        Ok(id) => {
            let _ = m.events.send(Event::Scanned { id });
        }
        Err(e) => {
            // Unrecorded means undecided: the sender retries.
            warn!(error = %e, queue_id = ?queue_id, "cannot record the milter decision; tempfail");
            return tempfail(cx, TEMPFAIL_TEXT);
        }
    }
    info!(queue_id = ?queue_id, verdict = %decision.verdict, reply = %reply, reason = %decision.reason, "milter decided");

    match reply {
        MilterReply::Reject => {
            let _ = cx.reply.set_error_reply("550", Some("5.7.1"), [REJECT_TEXT]);
            Status::Reject
        }
        MilterReply::Tempfail => tempfail(cx, if oversize { OVERSIZE_TEXT } else { TEMPFAIL_TEXT }),
        MilterReply::Hold | MilterReply::Headers | MilterReply::Accept => {
            let unscanned = oversize.then_some((size, m.max_message_bytes));
            if let Err(e) = modify(cx, actions, &own_seen, &decision, reply, unscanned).await {
                warn!(error = ?e, queue_id = ?queue_id, "cannot change the message; tempfail");
                return tempfail(cx, TEMPFAIL_TEXT);
            }
            Status::Accept
        }
    }
}

/// Copies held mail into the EML store (as the IMAP path does for its
/// quarantine) for the dashboard's preview, rescan and learning. A copy that
/// cannot be written costs only those: the hold itself is Postfix's, and
/// release and delete work on the queue file.
async fn keep_copy(dir: &std::path::Path, sha256: &str, raw: &[u8]) -> Option<String> {
    let (dir, sha, raw) = (dir.to_path_buf(), sha256.to_string(), raw.to_vec());
    let r = tokio::task::spawn_blocking(move || crate::store::eml::store(&dir, crate::store::MILTER_ACCOUNT, &sha, &raw)).await;
    match r {
        Ok(Ok(p)) => Some(p.to_string_lossy().into_owned()),
        Ok(Err(e)) => {
            warn!(error = %e, "cannot keep a copy of held mail");
            None
        }
        Err(e) => {
            warn!(error = %e, "cannot keep a copy of held mail");
            None
        }
    }
}

fn tempfail(cx: &mut EomContext<Session>, why: &str) -> Status {
    let _ = cx.reply.set_error_reply("451", Some("4.7.1"), [why]);
    Status::Tempfail
}

/// Removes forged copies of our headers, adds ours, and holds the message
/// when asked to, each as far as the MTA agreed to the action.
async fn modify(
    cx: &EomContext<Session>,
    actions: Actions,
    own_seen: &[(&'static str, i32)],
    d: &Decision,
    reply: MilterReply,
    unscanned: Option<(u64, u32)>,
) -> Result<(), indymilter::ActionError> {
    if actions.contains(Actions::CHANGE_HEADER) {
        for (name, n) in own_seen {
            // Deleting index 1 repeatedly would shift; delete from the last.
            for i in (1..=*n).rev() {
                cx.actions.change_header(*name, i, None::<CString>).await?;
            }
        }
    }
    if actions.contains(Actions::ADD_HEADER) {
        if let Some((size, limit)) = unscanned {
            let v = format!("not scanned: {size} bytes, over the {limit}-byte limit");
            return cx.actions.add_header("X-Postern-Scan", v).await;
        }
        for (name, value) in headers_for(d, reply) {
            cx.actions.add_header(name, value).await?;
        }
    }
    if reply == MilterReply::Hold {
        cx.actions.quarantine(format!("Postern: {}", d.verdict)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lose_brackets_and_parameters_stay_out() {
        let args = vec![CString::new("<Bob@Example.test>").unwrap(), CString::new("SIZE=100").unwrap()];
        assert_eq!(address(&args), "Bob@Example.test");
        assert_eq!(address(&[CString::new("<>").unwrap()]), "");
        assert_eq!(address(&[]), "");
    }

    #[test]
    fn past_the_limit_nothing_is_kept_but_the_size_is_counted() {
        let mut s = Session::default();
        s.push(b"0123456789", 16);
        s.push(b"0123456789", 16);
        assert!(s.oversize);
        assert!(s.raw.is_empty());
        assert_eq!(s.size, 20);
    }

    #[test]
    fn an_mta_offering_less_is_served_with_what_it_offers() {
        assert_eq!(negotiated(Actions::all()), ACTIONS);
        assert_eq!(negotiated(Actions::ADD_HEADER), Actions::ADD_HEADER);
        assert_eq!(negotiated(Actions::empty()), Actions::empty());
    }

    #[test]
    fn a_new_message_keeps_the_connection_facts() {
        let mut s = Session {
            actions: Actions::ADD_HEADER,
            ..Default::default()
        };
        s.env.client_ip = Some("192.0.2.1".parse().unwrap());
        s.env.helo = Some("h".into());
        s.env.rcpt.push("a@b".into());
        s.push(b"x", 100);
        s.new_message(Some("f@g".into()));
        assert_eq!(s.env.client_ip, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(s.env.helo.as_deref(), Some("h"));
        assert!(s.env.rcpt.is_empty() && s.raw.is_empty());
        assert_eq!(s.actions, Actions::ADD_HEADER);
    }
}
