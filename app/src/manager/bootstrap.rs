//! The first-run bootstrap (issue 17): an account that asks for it
//! (`learn_bootstrap`) has the mail already in its Junk folder learned as
//! spam, and read mail older than `bootstrap_ham_days` in its watched
//! folders as ham. It only reads (`BODY.PEEK[]`): nothing moves and no flag
//! changes. The listing is stored once, each message's outcome in its own
//! transaction, so a restart resumes where the last run stopped.

use super::ManagerHandle;
use super::login;
use crate::actions::JUNK_KEYWORD;
use crate::config::{AccountConfig, BootstrapConfig, DEFAULT_FLAG_KEYWORD, JunkFolder};
use crate::domain::MessageKey;
use crate::imap::{Conn, ImapError, Selected};
use crate::scan::envelope;
use crate::scan::learn::Class;
use crate::store::{BootItem, BootOutcome, StoreError};
use crate::worker::Deps;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Why a bootstrap pass stopped early (it is retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The IMAP server failed.
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Login or keeping the copy failed.
    #[error("{0}")]
    Other(String),
}

/// Messages fetched per round trip, at most (their bodies are held in memory).
const MAX_CHUNK: u32 = 50;

impl ManagerHandle {
    /// Runs (or resumes) the account's bootstrap until it is done (true) or
    /// `cancel` fires (false).
    pub async fn bootstrap(&self, acct: &AccountConfig, cfg: BootstrapConfig, cancel: &CancellationToken) -> Result<bool, BootstrapError> {
        let deps = self.deps().clone();
        let store = &deps.store;
        match store.bootstrap_started(&acct.name).await? {
            Some(true) => return Ok(true),
            Some(false) => {}
            None => {
                let mut conn = connect(&deps, acct).await?;
                let (items, detail) = list(&deps, acct, cfg, &mut conn).await?;
                conn.logout().await;
                info!(account = %acct.name, messages = items.len(), %detail, "bootstrap listed the mail to learn");
                store.begin_bootstrap(&acct.name, cfg.ham_days, items, detail).await?;
            }
        }
        store.resume_bootstrap(&acct.name).await?;
        let pace = Duration::from_millis(60_000 / u64::from(cfg.per_minute.max(1)));
        let chunk = deps.tuning.fetch_chunk.clamp(1, MAX_CHUNK);
        let mut conn = connect(&deps, acct).await?;
        let mut selected: Option<Selected> = None;
        let mut last: Option<Instant> = None;
        loop {
            let items = store.bootstrap_pending(&acct.name, chunk).await?;
            let Some(first) = items.first() else {
                conn.logout().await;
                if store.finish_bootstrap(&acct.name).await? {
                    info!(account = %acct.name, "bootstrap done; nothing was moved");
                }
                return Ok(true);
            };
            let (mailbox, uidvalidity) = (first.key.mailbox.clone(), first.key.uidvalidity);
            let batch: Vec<BootItem> = items
                .into_iter()
                .filter(|i| i.key.mailbox == mailbox && i.key.uidvalidity == uidvalidity)
                .collect();
            if selected.as_ref().is_none_or(|s| s.mailbox != mailbox) {
                selected = Some(conn.select(&mailbox).await?);
            }
            let fresh = selected.as_ref().is_some_and(|s| s.uidvalidity == uidvalidity);
            let outcomes = if fresh {
                match fetch(&deps, &mut conn, &batch).await {
                    Ok(o) => o,
                    Err(BootstrapError::Imap(ImapError::LiteralTooLarge(r))) => {
                        // The server sent more than it declared: skip this
                        // chunk rather than retry it forever, on a new
                        // connection (the old one is mid-literal).
                        conn = connect(&deps, acct).await?;
                        selected = None;
                        let why = format!("the server sent a body over the limit: {r}");
                        batch.iter().map(|_| Fetch::Done(BootOutcome::Skip(why.clone()))).collect()
                    }
                    Err(e) => return Err(e),
                }
            } else {
                // The folder was re-created: these UIDs name other mail now.
                batch
                    .iter()
                    .map(|_| Fetch::Done(BootOutcome::Skip("the folder's UIDVALIDITY changed".into())))
                    .collect()
            };
            for (item, outcome) in batch.iter().zip(outcomes) {
                // The pace: at most `per_minute` messages a minute.
                if let Some(t) = last {
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(false),
                        _ = tokio::time::sleep_until(t + pace) => {}
                    }
                } else if cancel.is_cancelled() {
                    return Ok(false);
                }
                last = Some(Instant::now());
                let outcome = match outcome {
                    Fetch::Done(o) => o,
                    Fetch::Body(raw) => learn_outcome(&deps, acct, item, raw).await?,
                };
                store.finish_boot_item(item, outcome).await?;
            }
        }
    }
}

async fn connect(deps: &Deps, acct: &AccountConfig) -> Result<Conn, BootstrapError> {
    login::connect(deps, acct).await.map_err(|e| BootstrapError::Other(e.to_string()))
}

/// The account's Junk folder, if it has one that is not a watched folder
/// (a watched Junk folder is scanned like any other; its mail is not the
/// user's verdict).
async fn junk_folder(acct: &AccountConfig, conn: &mut Conn) -> Result<Option<String>, BootstrapError> {
    let found = match &acct.junk_folder {
        JunkFolder::Off => None,
        JunkFolder::Folder(f) => conn.mailbox_exists(f).await?.then(|| f.clone()),
        JunkFolder::Auto => match conn.junk_mailbox().await {
            Ok(f) => f,
            Err(ImapError::Refused { .. }) => None,
            Err(e) => return Err(e.into()),
        },
    };
    Ok(found.filter(|j| !acct.folders.iter().any(|w| w.eq_ignore_ascii_case(j))))
}

/// Lists what the bootstrap learns: everything in Junk, and read mail in
/// the watched folders that arrived before the cut-off and carries neither
/// Postern's flag keyword nor `$Junk` (Postern's own verdicts).
async fn list(deps: &Deps, acct: &AccountConfig, cfg: BootstrapConfig, conn: &mut Conn) -> Result<(Vec<BootItem>, String), BootstrapError> {
    let mut items = Vec::new();
    let mut parts = Vec::new();
    let mut add = |sel: &Selected, uids: Vec<u32>, class: Class, parts: &mut Vec<String>| {
        parts.push(format!("{} in {} as {}", uids.len(), sel.mailbox, class.as_str()));
        items.extend(uids.into_iter().map(|uid| BootItem {
            key: MessageKey {
                account: acct.name.clone(),
                mailbox: sel.mailbox.clone(),
                uidvalidity: sel.uidvalidity,
                uid,
            },
            class,
        }));
    };
    match junk_folder(acct, conn).await? {
        Some(junk) => {
            let sel = conn.select(&junk).await?;
            let uids = conn.uid_search("ALL").await?;
            add(&sel, uids, Class::Spam, &mut parts);
        }
        None => parts.push("no Junk folder to learn spam from".into()),
    }
    let cutoff = deps.clock.now() - chrono::Duration::days(i64::from(cfg.ham_days));
    let keyword = acct.flag_keyword.as_deref().unwrap_or(DEFAULT_FLAG_KEYWORD);
    let query = format!(
        "SEEN BEFORE {} NOT KEYWORD {keyword} NOT KEYWORD {JUNK_KEYWORD}",
        cutoff.format("%d-%b-%Y")
    );
    for folder in &acct.folders {
        let sel = conn.select(folder).await?;
        let uids = conn.uid_search(&query).await?;
        add(&sel, uids, Class::Ham, &mut parts);
    }
    Ok((items, parts.join(", ")))
}

/// A fetched body, or why the message is not learned.
enum Fetch {
    Body(std::sync::Arc<Vec<u8>>),
    Done(BootOutcome),
}

/// Fetches one chunk of the selected folder with `BODY.PEEK[]` (never
/// `\Seen`): one entry per item, in order.
async fn fetch(deps: &Deps, conn: &mut Conn, batch: &[BootItem]) -> Result<Vec<Fetch>, BootstrapError> {
    let limit = deps.tuning.max_message_bytes;
    let uids: Vec<u32> = batch.iter().map(|i| i.key.uid).collect();
    let sizes = conn.fetch_sizes(&uids).await?;
    let wanted: Vec<u32> = uids
        .iter()
        .copied()
        .filter(|u| sizes.iter().any(|(s, n)| s == u && *n <= limit))
        .collect();
    let mut bodies = if wanted.is_empty() {
        Vec::new()
    } else {
        conn.fetch_bodies(&wanted).await?
    };
    Ok(uids
        .iter()
        .map(|u| match bodies.iter().position(|f| f.uid == *u) {
            Some(i) => Fetch::Body(bodies.swap_remove(i).raw),
            None if sizes.iter().any(|(s, _)| s == u) => Fetch::Done(BootOutcome::Skip("over the size limit".into())),
            None => Fetch::Done(BootOutcome::Skip("gone before it was read".into())),
        })
        .collect())
}

/// A fetched message's outcome: its copy kept and its lesson queued,
/// unless Postern moved it into Junk itself (Postern's opinion, not the
/// user's).
async fn learn_outcome(
    deps: &Deps,
    acct: &AccountConfig,
    item: &BootItem,
    raw: std::sync::Arc<Vec<u8>>,
) -> Result<BootOutcome, BootstrapError> {
    let sha256 = hex::encode(Sha256::digest(raw.as_slice()));
    if item.class == Class::Spam && deps.store.postern_moved(&acct.name, &sha256).await? {
        return Ok(BootOutcome::Skip("moved there by Postern; not the user's opinion".into()));
    }
    let message_id = envelope(&raw).message_id;
    let eml_path = deps
        .keep_copy(&acct.name, &sha256, raw)
        .await
        .map_err(|e| BootstrapError::Other(e.to_string()))?;
    Ok(BootOutcome::Learn {
        sha256,
        message_id,
        eml_path,
    })
}
