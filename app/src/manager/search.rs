//! Search and purge on the mailboxes (issue 17, item 5). Searching opens a
//! short-lived connection through the account's login path (the runner's
//! connection stays free for intents); purging runs on the runner's own
//! connection, like every other action, so shadow mode and the one-writer
//! rule hold for it too.

use crate::config::AccountConfig;
use crate::imap::{Conn, ImapError, SearchKey};
use crate::store::{PurgeDone, PurgeItem, eml};
use sha2::{Digest, Sha256};
use std::path::Path;

/// What an operator searches by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// `SEARCH FROM`: a substring of the From header (address or name).
    Sender,
    /// `SEARCH SUBJECT`: a substring of the Subject.
    Subject,
    /// `SEARCH HEADER Message-ID`.
    MessageId,
    /// `SEARCH BODY` plus the local index of URLs in scanned mail.
    Url,
    /// The local index of attachment SHA-256s (IMAP cannot search a hash),
    /// each hit confirmed on the server by `UID SEARCH UID`.
    Sha256,
}

impl Criterion {
    /// Stored and shown form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::Subject => "subject",
            Self::MessageId => "message_id",
            Self::Url => "url",
            Self::Sha256 => "sha256",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Sender, Self::Subject, Self::MessageId, Self::Url, Self::Sha256]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// A message the local index knows matches: (folder, UIDVALIDITY, UID).
pub type Candidate = (String, u32, u32);

/// What one folder holds that matches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FolderHits {
    /// Folder.
    pub mailbox: String,
    /// Its UIDVALIDITY (absent when it could not be selected).
    pub uidvalidity: Option<u32>,
    /// Matching UIDs, ascending.
    pub uids: Vec<u32>,
    /// Why the folder could not be searched.
    pub error: Option<String>,
}

/// Why an account could not be searched at all.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The account is not running.
    #[error("account {0} is not running")]
    NotRunning(String),
    /// Logging in failed.
    #[error("cannot log in: {0}")]
    Login(String),
    /// The search text cannot travel in IMAP (a line break, NUL, or 8-bit
    /// text the server cannot take).
    #[error("{0}")]
    Argument(String),
    /// The connection failed mid-search.
    #[error(transparent)]
    Imap(ImapError),
}

impl From<ImapError> for SearchError {
    fn from(e: ImapError) -> Self {
        match e {
            ImapError::Argument(a) => Self::Argument(a),
            e => Self::Imap(e),
        }
    }
}

/// Those of `candidates` in `folder` (this generation) that the server
/// still has.
async fn confirm(conn: &mut Conn, folder: &str, uidvalidity: u32, candidates: &[Candidate]) -> Result<Vec<u32>, ImapError> {
    let mut uids: Vec<u32> = candidates
        .iter()
        .filter(|(m, v, _)| m == folder && *v == uidvalidity)
        .map(|c| c.2)
        .collect();
    if uids.is_empty() {
        return Ok(uids);
    }
    uids.sort_unstable();
    uids.dedup();
    let found = conn.uid_search(&format!("UID {}", crate::imap::uid_set(&uids))).await?;
    uids.retain(|u| found.contains(u));
    Ok(uids)
}

/// Searches one selected folder.
async fn folder_hits(
    conn: &mut Conn,
    criterion: Criterion,
    value: &str,
    folder: &str,
    uidvalidity: u32,
    candidates: &[Candidate],
) -> Result<Vec<u32>, ImapError> {
    let mut uids = match criterion {
        Criterion::Sender => conn.search_text(SearchKey::From, value).await?,
        Criterion::Subject => conn.search_text(SearchKey::Subject, value).await?,
        Criterion::MessageId => conn.search_header("Message-ID", value).await?,
        Criterion::Url => conn.search_text(SearchKey::Body, value).await?,
        Criterion::Sha256 => Vec::new(),
    };
    if matches!(criterion, Criterion::Url | Criterion::Sha256) {
        uids.extend(confirm(conn, folder, uidvalidity, candidates).await?);
        uids.sort_unstable();
        uids.dedup();
    }
    Ok(uids)
}

/// Searches every watched folder of the account on `conn`.
pub(super) async fn search(
    conn: &mut Conn,
    acct: &AccountConfig,
    criterion: Criterion,
    value: &str,
    candidates: &[Candidate],
) -> Result<Vec<FolderHits>, SearchError> {
    let mut out = Vec::new();
    for folder in &acct.folders {
        let sel = match conn.select(folder).await {
            Ok(s) => s,
            Err(ImapError::Refused { detail, .. }) => {
                out.push(FolderHits {
                    mailbox: folder.clone(),
                    uidvalidity: None,
                    uids: Vec::new(),
                    error: Some(format!("cannot select: {detail}")),
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (uids, error) = match folder_hits(conn, criterion, value, folder, sel.uidvalidity, candidates).await {
            Ok(u) => (u, None),
            // A search the server refuses (BADCHARSET, say) concerns this folder only.
            Err(ImapError::Refused { detail, .. }) => (Vec::new(), Some(format!("search refused: {detail}"))),
            Err(e) => return Err(e.into()),
        };
        out.push(FolderHits {
            mailbox: folder.clone(),
            uidvalidity: Some(sel.uidvalidity),
            uids,
            error,
        });
    }
    Ok(out)
}

fn ended(state: &'static str, detail: String) -> PurgeDone {
    PurgeDone {
        state,
        detail,
        eml_path: None,
        moved_to: None,
    }
}

/// Moves one purge item to quarantine on the runner's connection: the
/// folder must still be the same generation and hold the UID; an EML copy
/// is written before the move, and nothing moves without one. Transport
/// errors are returned (the item stays pending).
pub(super) async fn purge_one(conn: &mut Conn, acct: &AccountConfig, item: &PurgeItem, eml_dir: &Path) -> Result<PurgeDone, ImapError> {
    let folder = &item.key.mailbox;
    let sel = match conn.select(folder).await {
        Ok(s) => s,
        Err(ImapError::Refused { detail, .. }) => return Ok(ended("gone", format!("folder {folder} is gone: {detail}; nothing touched"))),
        Err(e) => return Err(e),
    };
    if sel.uidvalidity != item.key.uidvalidity {
        return Ok(ended(
            "gone",
            format!("{folder} changed UIDVALIDITY since the search; nothing touched (search again)"),
        ));
    }
    let uid = item.key.uid;
    let Some(f) = conn.fetch_bodies(&[uid]).await?.into_iter().find(|f| f.uid == uid) else {
        return Ok(ended("gone", format!("UID {uid} is no longer in {folder}; nothing touched")));
    };
    let raw = std::sync::Arc::unwrap_or_clone(f.raw);
    let sha = hex::encode(Sha256::digest(&raw));
    let (dir, account) = (eml_dir.to_path_buf(), acct.name.clone());
    let copy = tokio::task::spawn_blocking(move || eml::store(&dir, &account, &sha, &raw))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r);
    let copy = match copy {
        Ok(p) => p.to_string_lossy().into_owned(),
        Err(e) => return Ok(ended("failed", format!("cannot keep an EML copy ({e}); not moved"))),
    };
    let dest = &acct.quarantine_folder;
    conn.ensure_mailbox(dest).await?;
    conn.select(folder).await?;
    let moved = match conn.move_uid(uid, dest).await {
        Ok(m) => m,
        Err(ImapError::Refused { command, detail }) => return Ok(ended("failed", format!("{command}: {detail}; left in {folder}"))),
        Err(ImapError::Deferred(why)) => return Ok(ended("failed", format!("{why}; left in {folder}"))),
        Err(e) => return Err(e),
    };
    let new_uid = moved.new_uid.map_or("unknown".into(), |u| u.to_string());
    Ok(PurgeDone {
        state: "moved",
        detail: format!("moved from {folder} UID {uid} to {dest} (new UID {new_uid}); EML copy kept at {copy}"),
        eml_path: Some(copy),
        moved_to: Some((dest.clone(), moved.new_uid)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_round_trip_and_unknown_ones_are_refused() {
        for c in [
            Criterion::Sender,
            Criterion::Subject,
            Criterion::MessageId,
            Criterion::Url,
            Criterion::Sha256,
        ] {
            assert_eq!(Criterion::parse(c.as_str()), Some(c));
        }
        assert_eq!(Criterion::parse("ALL"), None);
        assert_eq!(Criterion::parse("from"), None);
    }
}
