//! What an account's server lets verdicts do, found at every connect and
//! shown on `/health`: how mail is moved (MOVE, UIDPLUS, or neither), whether
//! the folder keeps keywords (PERMANENTFLAGS), and where spam goes. A
//! folder that keeps no keywords leaves flagged mail unmarked: no outage of
//! Postern's, but it must not look like protection either (an interop probe
//! of pymap found flag and junk verdicts "done" with nothing marked and
//! `/health` green).

use super::listener::{Listener, ListenerError, Role};
use super::status::JunkRoute;
use crate::actions::{FLAG_KEYWORD, JUNK_KEYWORD, accepts_keyword};
use crate::config::{DEFAULT_FLAG_KEYWORD, JunkFolder};
use crate::domain::Mode;
use crate::imap::{Conn, ImapError, Selected};
use tracing::{info, warn};

impl Listener {
    /// Records this connection's limits on the listener's status.
    pub(super) async fn find_limits(&self, conn: &mut Conn, sel: &Selected) -> Result<(), ListenerError> {
        self.resolve_junk(conn, sel).await?;
        let move_caveat = conn.moves_guarded().then(|| {
            "the server offers neither MOVE nor UIDPLUS: mail is moved with COPY and EXPUNGE, which removes \
             every message marked \\Deleted, so a move waits (and is retried) while any other message in the \
             folder is marked \\Deleted"
                .to_string()
        });
        let cannot_mark = self.cannot_mark(sel);
        for why in move_caveat.iter().chain(&cannot_mark) {
            warn!("{why}");
        }
        self.status.update(|s| {
            s.move_caveat = move_caveat;
            s.cannot_mark = cannot_mark;
        });
        Ok(())
    }

    /// Why the flag verdict cannot mark mail in this folder, if it cannot.
    fn cannot_mark(&self, sel: &Selected) -> Option<String> {
        let keyword = self.acct.flag_keyword.as_deref().unwrap_or(DEFAULT_FLAG_KEYWORD);
        let marks = [keyword, FLAG_KEYWORD].iter().any(|k| accepts_keyword(&sel.permanent_flags, k));
        if marks || self.role != Role::Watch || self.acct.mode == Mode::Shadow {
            return None;
        }
        Some(format!(
            "{} keeps no keywords (PERMANENTFLAGS {}): flag verdicts are recorded but the mail is left unmarked",
            self.mailbox,
            sel.permanent_flags.join(" ")
        ))
    }

    /// Finds where this account's spam goes (issue 14): the configured
    /// folder, none, or the folder the server marks `\Junk`. A watched
    /// folder is never a destination (Postern would rescan what it moved).
    /// A server that refuses the LIST form leaves spam marked in place, or
    /// unmarked where the folder keeps no keywords.
    async fn resolve_junk(&self, conn: &mut Conn, sel: &Selected) -> Result<(), ListenerError> {
        let in_place = if accepts_keyword(&sel.permanent_flags, JUNK_KEYWORD) {
            "spam is marked $Junk in place".to_string()
        } else {
            format!("spam is left in place unmarked ({} keeps no keywords)", self.mailbox)
        };
        let route = match &self.acct.junk_folder {
            JunkFolder::Off => JunkRoute {
                folder: None,
                why: format!("junk_folder: off; {in_place}"),
            },
            JunkFolder::Folder(f) => JunkRoute {
                folder: Some(f.clone()),
                why: format!("{f} (junk_folder)"),
            },
            JunkFolder::Auto => match conn.junk_mailbox().await {
                Ok(Some(f)) if self.acct.folders.iter().any(|w| w.eq_ignore_ascii_case(&f)) => JunkRoute {
                    folder: None,
                    why: format!("the \\Junk folder {f} is a watched folder; {in_place}"),
                },
                Ok(Some(f)) => JunkRoute {
                    why: format!("{f} (SPECIAL-USE \\Junk)"),
                    folder: Some(f),
                },
                Ok(None) => JunkRoute {
                    folder: None,
                    why: format!("no folder is marked \\Junk (set junk_folder to choose one); {in_place}"),
                },
                Err(ImapError::Refused { detail, .. }) => JunkRoute {
                    folder: None,
                    why: format!("the server refused to list special-use folders ({detail}); {in_place}"),
                },
                Err(e) => return Err(e.into()),
            },
        };
        info!(junk = ?route.folder, why = %route.why, "junk destination");
        self.status.update(|s| s.junk = Some(route));
        Ok(())
    }
}
