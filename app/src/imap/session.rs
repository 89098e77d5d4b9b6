//! The IMAP operations Postern performs, each bounded by the command timeout.
//!
//! Reading never changes flags: bodies are fetched with `BODY.PEEK[]`, and
//! new mail is found by UID range, never by `\Seen` or `\Recent`.

use super::conn::{Conn, deadline};
use super::{ImapError, Result};
use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response, ResponseCode, Status};
use async_imap::types::Flag;
use futures::TryStreamExt;

/// What SELECT told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Mailbox name.
    pub mailbox: String,
    /// UIDVALIDITY (required; a server without it is refused).
    pub uidvalidity: u32,
    /// UIDNEXT, when sent.
    pub uid_next: Option<u32>,
    /// Message count.
    pub exists: u32,
    /// HIGHESTMODSEQ with CONDSTORE.
    pub highest_modseq: Option<u64>,
    /// PERMANENTFLAGS, wire form (`\*` means new keywords are allowed).
    pub permanent_flags: Vec<String>,
}

/// One fetched message.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// UID.
    pub uid: u32,
    /// Raw RFC 5322 bytes, shared (not copied) by the scan and the EML copy.
    pub raw: std::sync::Arc<Vec<u8>>,
    /// INTERNALDATE as RFC 3339.
    pub internal_date: Option<String>,
}

/// Result of moving a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveOutcome {
    /// The UID in the destination, from COPYUID (RFC 4315).
    pub new_uid: Option<u32>,
    /// How the server was asked to move it.
    pub how: MoveHow,
}

/// The commands a move took, by what the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveHow {
    /// `UID MOVE` (RFC 6851).
    Move,
    /// COPY, `\Deleted` and `UID EXPUNGE` of that message (UIDPLUS, RFC 4315).
    CopyUidExpunge,
    /// COPY, `\Deleted` and a plain EXPUNGE while no other message in the
    /// folder was marked `\Deleted` (a server with neither).
    CopyExpunge,
}

impl MoveHow {
    /// As written in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            MoveHow::Move => "MOVE",
            MoveHow::CopyUidExpunge => "COPY+UID EXPUNGE",
            MoveHow::CopyExpunge => "COPY+EXPUNGE (no other message marked deleted)",
        }
    }
}

/// The text search keys Postern sends (RFC 3501 section 6.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKey {
    /// The From header.
    From,
    /// The Subject header.
    Subject,
    /// The body text.
    Body,
}

impl SearchKey {
    /// Wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::From => "FROM",
            Self::Subject => "SUBJECT",
            Self::Body => "BODY",
        }
    }
}

/// Formats sorted UIDs as a compact sequence set (`1:3,7,9:10`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.saturating_add(1) {
            i += 1;
            end = uids[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// Wire form of a flag (`\Seen`, `$Keyword`, `\*`).
pub fn flag_name(f: &Flag<'_>) -> String {
    match f {
        Flag::Seen => "\\Seen".into(),
        Flag::Answered => "\\Answered".into(),
        Flag::Flagged => "\\Flagged".into(),
        Flag::Deleted => "\\Deleted".into(),
        Flag::Draft => "\\Draft".into(),
        Flag::Recent => "\\Recent".into(),
        Flag::MayCreate => "\\*".into(),
        Flag::Custom(c) => c.to_string(),
    }
}

fn contains_uid(set: &[UidSetMember], uid: u32) -> bool {
    set.iter().any(|m| match m {
        UidSetMember::Uid(u) => *u == uid,
        UidSetMember::UidRange(r) => r.contains(&uid),
    })
}

impl Conn {
    /// SELECTs a mailbox (with CONDSTORE when available). `mailbox` is the
    /// configured (decoded) name; the server's name for it is used on the
    /// wire, found under the personal namespace when not there as given.
    pub async fn select(&mut self, mailbox: &str) -> Result<Selected> {
        let target = self.resolved(mailbox).to_string();
        match self.select_as(mailbox, &target).await {
            Err(ImapError::Refused { command, detail }) if !self.aliases.contains_key(mailbox) => match self.find_mailbox(mailbox).await? {
                Some(found) if found != target => self.select_as(mailbox, &found).await,
                _ => Err(ImapError::Refused { command, detail }),
            },
            r => r,
        }
    }

    async fn select_as(&mut self, mailbox: &str, target: &str) -> Result<Selected> {
        let condstore = self.has("CONDSTORE");
        // async-imap quotes SELECT's argument itself (same escaping as
        // `names::quote`); it gets the encoded name.
        let wire = self.wire_name(target);
        let t = self.timeout;
        // Whatever was queued about the folder selected before is moot.
        self.drain_unsolicited();
        let mb = deadline(t, "SELECT", async {
            let r = if condstore {
                self.session.select_condstore(&wire).await
            } else {
                self.session.select(&wire).await
            };
            r.map_err(|e| match e {
                async_imap::error::Error::No(d) | async_imap::error::Error::Bad(d) => ImapError::Refused {
                    command: format!("SELECT {target}"),
                    detail: super::server_text(&d),
                },
                async_imap::error::Error::Validate(v) => ImapError::Argument(format!("{target:?}: {v}")),
                other => ImapError::Client(other),
            })
        })
        .await?;
        self.selected = Some(mailbox.to_string());
        // A fresh SELECT answers every earlier signal about the folder.
        self.signals = Default::default();
        self.exists = Some(mb.exists);
        let uidvalidity = mb
            .uid_validity
            .ok_or_else(|| ImapError::Protocol(format!("SELECT {mailbox} returned no UIDVALIDITY")))?;
        Ok(Selected {
            mailbox: mailbox.to_string(),
            uidvalidity,
            uid_next: mb.uid_next,
            exists: mb.exists,
            highest_modseq: mb.highest_modseq,
            permanent_flags: mb.permanent_flags.iter().map(flag_name).collect(),
        })
    }

    /// The mailbox selected last.
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// `UID SEARCH`, sorted ascending. Read to its tagged reply: through
    /// async-imap a refused search (a server without a search key, a
    /// charset it will not take) read as "nothing found", which hid mail
    /// from the backfill, the claw-back search and the action re-checks.
    /// A refusal is [`ImapError::Refused`].
    pub async fn uid_search(&mut self, query: &str) -> Result<Vec<u32>> {
        let t = self.timeout;
        let mut v = deadline(t, "UID SEARCH", async {
            let mut uids = Vec::new();
            let refused = self
                .run_to_tagged(&format!("UID SEARCH {query}"), |r| match r {
                    Response::MailboxData(MailboxDatum::Search(ids)) => {
                        uids.extend(ids.iter().copied());
                        true
                    }
                    _ => false,
                })
                .await?;
            match refused {
                None => Ok(uids),
                Some(detail) => Err(ImapError::Refused {
                    command: "UID SEARCH".into(),
                    detail,
                }),
            }
        })
        .await?;
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    /// `UID SEARCH HEADER field value`, the value quoted or sent as a
    /// literal (with `CHARSET UTF-8` when it is not ASCII).
    pub async fn search_header(&mut self, field: &str, value: &str) -> Result<Vec<u32>> {
        let charset = if value.is_ascii() || self.utf8 { "" } else { "CHARSET UTF-8 " };
        let q = format!("{charset}HEADER {} {}", self.astring(field)?, self.astring(value)?);
        self.uid_search(&q).await
    }

    /// `UID SEARCH key value` for a fixed search key (`FROM`, `SUBJECT`,
    /// `BODY`), the value sent like [`Conn::search_header`]'s: quoted or as
    /// a literal, never spliced in raw, so operator text cannot add search
    /// keys or commands. A value IMAP cannot carry (CR, LF, NUL) is refused
    /// before anything is sent.
    pub async fn search_text(&mut self, key: SearchKey, value: &str) -> Result<Vec<u32>> {
        let charset = if value.is_ascii() || self.utf8 { "" } else { "CHARSET UTF-8 " };
        let q = format!("{charset}{} {}", key.as_str(), self.astring(value)?);
        self.uid_search(&q).await
    }

    /// UIDs strictly greater than `last_uid`. (`UID n:*` also returns the
    /// highest message when nothing is above n, hence the filter.)
    ///
    /// Asked with `UID FETCH n:* (UID)`, which every server answers from
    /// its UID map, rather than `UID SEARCH UID n:*`: GNU imap4d answers
    /// that search with nothing at all and reads other UID sets as
    /// sequence numbers, so new mail went unseen. The FETCH is read here to
    /// its tagged reply, because async-imap's streamed replies stop at the
    /// tag without looking at it (a NO would read as "no new mail"); a
    /// server that refuses it is asked the search instead.
    pub async fn uids_after(&mut self, last_uid: u32) -> Result<Vec<u32>> {
        let from = last_uid.saturating_add(1);
        let t = self.timeout;
        let fetched = deadline(t, "UID FETCH (UID)", async {
            let mut uids = Vec::new();
            let refused = self
                .run_to_tagged(&format!("UID FETCH {from}:* (UID)"), |r| match r {
                    Response::Fetch(_, attrs) => {
                        uids.extend(attrs.iter().filter_map(|a| match a {
                            AttributeValue::Uid(u) => Some(*u),
                            _ => None,
                        }));
                        true
                    }
                    _ => false,
                })
                .await?;
            Ok(refused.is_none().then_some(uids))
        })
        .await?;
        let mut v = match fetched {
            Some(uids) => uids,
            None => {
                tracing::debug!(from, "the server refused UID FETCH n:* (UID); asking UID SEARCH");
                self.uid_search(&format!("UID {from}:*")).await?
            }
        };
        v.retain(|u| *u > last_uid);
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    /// Sizes of the given UIDs.
    pub async fn fetch_sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>> {
        let t = self.timeout;
        let set = uid_set(uids);
        let fetched: Vec<_> = deadline(t, "UID FETCH RFC822.SIZE", async {
            Ok(self
                .session
                .uid_fetch(&set, "(UID RFC822.SIZE)")
                .await?
                .try_collect::<Vec<_>>()
                .await?)
        })
        .await?;
        Ok(fetched.iter().filter_map(|f| Some((f.uid?, f.size.unwrap_or(0)))).collect())
    }

    /// Bodies of the given UIDs with `BODY.PEEK[]`, which never sets `\Seen`.
    pub async fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Vec<Fetched>> {
        let t = self.timeout;
        let set = uid_set(uids);
        let fetched: Vec<_> = deadline(t, "UID FETCH BODY.PEEK[]", async {
            Ok(self
                .session
                .uid_fetch(&set, "(UID INTERNALDATE BODY.PEEK[])")
                .await?
                .try_collect::<Vec<_>>()
                .await?)
        })
        .await?;
        let mut out: Vec<Fetched> = fetched
            .iter()
            .filter_map(|f| {
                Some(Fetched {
                    uid: f.uid?,
                    raw: std::sync::Arc::new(f.body()?.to_vec()),
                    internal_date: f.internal_date().map(|d| d.to_rfc3339()),
                })
            })
            .collect();
        out.retain(|f| uids.contains(&f.uid));
        out.sort_by_key(|f| f.uid);
        Ok(out)
    }

    /// Flags of the given UIDs, wire form, sorted.
    pub async fn fetch_flags(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<String>)>> {
        let t = self.timeout;
        let set = uid_set(uids);
        let fetched: Vec<_> = deadline(t, "UID FETCH FLAGS", async {
            Ok(self.session.uid_fetch(&set, "(UID FLAGS)").await?.try_collect::<Vec<_>>().await?)
        })
        .await?;
        Ok(fetched
            .iter()
            .filter_map(|f| {
                let mut fl: Vec<String> = f.flags().map(|x| flag_name(&x)).filter(|x| x != "\\Recent").collect();
                fl.sort();
                Some((f.uid?, fl))
            })
            .collect())
    }

    /// Every selectable mailbox of the account, names decoded.
    pub async fn list_mailboxes(&mut self) -> Result<Vec<String>> {
        let t = self.timeout;
        let wire: Vec<String> = deadline(t, "LIST", async {
            // async-imap sends LIST's pattern as given: it is quoted here.
            let names: Vec<_> = self.session.list(Some(""), Some("\"*\"")).await?.try_collect().await?;
            Ok(names
                .iter()
                .filter(|n| !n.attributes().contains(&async_imap::types::NameAttribute::NoSelect))
                .map(|n| n.name().to_string())
                .collect())
        })
        .await?;
        Ok(wire.iter().map(|w| self.display_name(w)).collect())
    }

    /// Moves one message from the selected mailbox to `dest`.
    ///
    /// Uses MOVE (RFC 6851). Without it, COPY + `\Deleted` + `UID EXPUNGE`
    /// of that message (UIDPLUS, RFC 4315). With neither (GNU imap4d,
    /// UW-IMAP), COPY and a plain EXPUNGE, which removes *every* message
    /// marked `\Deleted`: so only while this one is the only such message
    /// ([`Conn::expunge_alone`]); otherwise [`ImapError::Deferred`].
    pub async fn move_uid(&mut self, uid: u32, dest: &str) -> Result<MoveOutcome> {
        let dest = self.astring(&self.wire_name(self.resolved(dest)))?;
        if self.has("MOVE") {
            let new_uid = self.tagged(&format!("UID MOVE {uid} {dest}"), uid).await?;
            return Ok(MoveOutcome {
                new_uid,
                how: MoveHow::Move,
            });
        }
        // Without UIDPLUS, checked before the copy too, so that a folder
        // with mail marked deleted does not collect a copy per retry.
        let marked_before = self.removable(uid).await?;
        let new_uid = self.tagged(&format!("UID COPY {uid} {dest}"), uid).await?;
        crate::failpoint::hit(crate::failpoint::AFTER_COPY).await;
        self.remove(uid, marked_before).await?;
        let how = if self.has("UIDPLUS") {
            MoveHow::CopyUidExpunge
        } else {
            MoveHow::CopyExpunge
        };
        Ok(MoveOutcome { new_uid, how })
    }

    /// Permanently removes one message from the selected mailbox: `UID
    /// EXPUNGE` with UIDPLUS, else a plain EXPUNGE while no other message
    /// is marked `\Deleted` ([`Conn::expunge_alone`]).
    pub async fn expunge_uid(&mut self, uid: u32) -> Result<()> {
        let marked_before = self.removable(uid).await?;
        self.remove(uid, marked_before).await
    }

    /// Whether `uid` can be expunged now: always with UIDPLUS, else
    /// [`Conn::none_deleted_but`]. Returns whether it was already marked.
    async fn removable(&mut self, uid: u32) -> Result<bool> {
        if self.has("UIDPLUS") {
            return Ok(false);
        }
        self.none_deleted_but(uid).await
    }

    /// Marks `uid` deleted and expunges it: `UID EXPUNGE` with UIDPLUS,
    /// else [`Conn::expunge_alone`], whose first check the caller made.
    async fn remove(&mut self, uid: u32, marked_before: bool) -> Result<()> {
        if !self.has("UIDPLUS") {
            return self.expunge_alone(uid, marked_before).await;
        }
        self.tagged(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"), uid).await?;
        self.tagged(&format!("UID EXPUNGE {uid}"), uid).await?;
        Ok(())
    }

    /// Marks `uid` deleted and EXPUNGEs, on a server without UIDPLUS, whose
    /// EXPUNGE takes every message marked `\Deleted`. The folder is
    /// searched again after marking: if another client marked a message
    /// meanwhile, the mark is taken back off and nothing is expunged. What
    /// is left is the moment between that search and the EXPUNGE, which
    /// is what clients of such servers have always lived with; the user's
    /// mail marked deleted waits instead (the action is retried).
    async fn expunge_alone(&mut self, uid: u32, marked_before: bool) -> Result<()> {
        self.tagged(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"), uid).await?;
        if let Err(e) = self.none_deleted_but(uid).await {
            // Only Postern's own mark comes off: one the user set stays.
            if !marked_before {
                self.tagged(&format!("UID STORE {uid} -FLAGS.SILENT (\\Deleted)"), uid).await?;
            }
            return Err(e);
        }
        self.tagged("EXPUNGE", uid).await?;
        Ok(())
    }

    /// On a server without UIDPLUS, why moving or expunging `uid` in
    /// `folder` would still wait (other mail there marked `\Deleted`), found
    /// with one search and no fetch: a waiting action repeats this at every
    /// pass rather than fetching its message again.
    pub async fn still_waits(&mut self, folder: &str, uid: u32) -> Result<Option<String>> {
        if self.has("UIDPLUS") {
            return Ok(None);
        }
        self.select(folder).await?;
        match self.none_deleted_but(uid).await {
            Ok(_) => Ok(None),
            Err(ImapError::Deferred(why)) => Ok(Some(why)),
            Err(e) => Err(e),
        }
    }

    /// Refuses while any message but `uid` in the selected mailbox is
    /// marked `\Deleted`: a plain EXPUNGE would remove it too.
    /// Returns whether `uid` itself is marked.
    async fn none_deleted_but(&mut self, uid: u32) -> Result<bool> {
        let marked = self.uid_search("DELETED").await?;
        let others: Vec<u32> = marked.iter().copied().filter(|u| *u != uid).collect();
        if others.is_empty() {
            return Ok(marked.contains(&uid));
        }
        let mut shown = uid_set(&others[..others.len().min(20)]);
        if others.len() > 20 {
            shown.push_str(",...");
        }
        Err(ImapError::Deferred(format!(
            "the server lacks UIDPLUS and {} other message(s) here are marked \\Deleted (UID {shown}); \
             an EXPUNGE would remove them too, so nothing is moved until they are expunged",
            others.len()
        )))
    }

    /// Adds flags/keywords to one message (never removes any).
    pub async fn add_flags(&mut self, uid: u32, flags: &[&str]) -> Result<()> {
        self.tagged(&format!("UID STORE {uid} +FLAGS.SILENT ({})", flags.join(" ")), uid)
            .await?;
        Ok(())
    }

    /// NOOP: gives the server a chance to report changes and proves liveness.
    pub async fn noop(&mut self) -> Result<()> {
        let t = self.timeout;
        deadline(t, "NOOP", async { Ok(self.session.noop().await?) }).await
    }

    /// Sends a command and reads until its tagged completion, returning the
    /// destination UID of any COPYUID response code for `src_uid`.
    pub(super) async fn tagged(&mut self, command: &str, src_uid: u32) -> Result<Option<u32>> {
        let t = self.timeout;
        let verb = command.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        deadline(t, &verb, async {
            let mut new_uid = None;
            let refused = self
                .run_to_tagged(command, |r| {
                    if let Response::Done { outcome, .. } | Response::Data { outcome, .. } = r
                        && let Some(ResponseCode::CopyUid(_, src, dst)) = &outcome.code
                    {
                        new_uid = new_uid.or_else(|| copyuid_dest(src, dst, src_uid));
                    }
                    true
                })
                .await?;
            match refused {
                None => Ok(new_uid),
                Some(detail) => Err(ImapError::Refused {
                    command: verb.clone(),
                    detail,
                }),
            }
        })
        .await
    }

    /// Sends `command` and reads to its tagged completion, which async-imap's
    /// streamed replies do without looking at its status (a NO would read as
    /// an empty answer). Every response, the completion included, goes to
    /// `each`; an untagged one it does not take (returns false) is noted as
    /// a folder signal. A BYE ends the session. `None` when the completion
    /// is OK, else the server's text.
    async fn run_to_tagged(&mut self, command: &str, mut each: impl FnMut(&Response<'_>) -> bool) -> Result<Option<String>> {
        let tag = self.session.run_command(command).await?;
        loop {
            let Some(resp) = self.session.read_response().await? else {
                return Err(ImapError::ConnectionLost);
            };
            match resp.parsed() {
                done @ Response::Done { tag: got, status, outcome } if *got == tag => {
                    each(done);
                    return Ok((*status != Status::Ok).then(|| outcome.information.as_deref().unwrap_or("").to_string()));
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    return Err(ImapError::Bye(outcome.information.as_deref().unwrap_or("").to_string()));
                }
                other => {
                    if !each(other) {
                        self.note(other);
                    }
                }
            }
        }
    }
}

/// Maps `src_uid` through a COPYUID's parallel source/destination sets.
fn copyuid_dest(src: &[UidSetMember], dst: &[UidSetMember], src_uid: u32) -> Option<u32> {
    if !contains_uid(src, src_uid) {
        return None;
    }
    let expand = |s: &[UidSetMember]| -> Vec<u32> {
        s.iter()
            .flat_map(|m| match m {
                UidSetMember::Uid(u) => *u..=*u,
                UidSetMember::UidRange(r) => r.clone(),
            })
            .take(10_000)
            .collect()
    };
    let (s, d) = (expand(src), expand(dst));
    s.iter().position(|u| *u == src_uid).and_then(|i| d.get(i).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), format!("{}:{}", u32::MAX - 1, u32::MAX));
    }

    #[test]
    fn copyuid_maps_parallel_sets() {
        let src = vec![UidSetMember::UidRange(3..=5)];
        let dst = vec![UidSetMember::Uid(10), UidSetMember::UidRange(11..=12)];
        assert_eq!(copyuid_dest(&src, &dst, 4), Some(11));
        assert_eq!(copyuid_dest(&src, &dst, 9), None);
    }
}
