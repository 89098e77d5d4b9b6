//! The on-disk copy of each feed's last good download, so a restart works
//! offline and the next refresh can be conditional.
//!
//! `<name>.data` is the body exactly as downloaded; `<name>.json` its
//! metadata. Both are replaced atomically (temp file + rename), data first: a
//! crash between the two leaves old validators next to new data, which costs
//! one unconditional download, never a stale copy kept by a 304.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::FeedSpec;
use super::fetch::Validators;

/// `<name>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// Hash of format and URL (which carries any key): a cache written for
    /// another source is not this feed's copy.
    pub source: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// When the data was downloaded (RFC 3339).
    pub fetched_at: String,
    /// Last successful refresh, 304 included (RFC 3339).
    pub checked_at: String,
    /// Entries the data held when written.
    pub entries: usize,
    /// SHA-256 of `<name>.data`, so a data file that does not belong to these
    /// validators is never revalidated by them.
    pub data_sha256: String,
}

impl Meta {
    pub fn validators(&self) -> Validators {
        Validators {
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        }
    }
}

/// What is on disk for one feed.
pub(crate) enum Loaded {
    /// Never downloaded (or written for another source).
    Nothing,
    /// Metadata and the body it describes.
    Found { meta: Meta, body: Vec<u8>, consistent: bool },
    /// Unreadable.
    Corrupt(String),
}

pub(crate) fn source_id(spec: &FeedSpec) -> String {
    hex::encode(Sha256::digest(format!("{}\n{}", spec.format.as_str(), spec.url)))
}

pub(crate) fn sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The file stem for a feed name. Names come from configuration, so anything
/// that could leave the directory or hide the file is replaced, and a name
/// that needed replacing gets a hash of itself so two such names cannot share
/// one cache.
pub(crate) fn stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s == name && !s.is_empty() {
        return s;
    }
    let tag = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{s}-{}", tag.get(..12).unwrap_or_default())
}

fn data_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.data"))
}

fn meta_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.json"))
}

/// Replaces data then metadata.
pub(crate) fn store(dir: &Path, stem: &str, body: &[u8], meta: &Meta) -> io::Result<()> {
    write_atomic(&data_path(dir, stem), body)?;
    store_meta(dir, stem, meta)
}

/// Replaces the metadata only (a 304 moves `checked_at`).
pub(crate) fn store_meta(dir: &Path, stem: &str, meta: &Meta) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
    write_atomic(&meta_path(dir, stem), &json)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // One refresh per feed at a time, so a fixed temp name cannot collide.
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    // The rename itself must reach the disk for the new file to survive a crash.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads what is on disk for `spec`.
pub(crate) fn load(dir: &Path, stem: &str, spec: &FeedSpec) -> Loaded {
    let meta_bytes = match fs::read(meta_path(dir, stem)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return match data_path(dir, stem).exists() {
                true => Loaded::Corrupt("cached data without its metadata".to_string()),
                false => Loaded::Nothing,
            };
        }
        Err(e) => return Loaded::Corrupt(format!("reading metadata: {e}")),
    };
    let meta: Meta = match serde_json::from_slice(&meta_bytes) {
        Ok(m) => m,
        Err(e) => return Loaded::Corrupt(format!("metadata unreadable: {e}")),
    };
    if meta.source != source_id(spec) {
        tracing::info!(feed = %spec.name, "cached copy is of another URL or format; not used");
        return Loaded::Nothing;
    }
    match fs::read(data_path(dir, stem)) {
        Ok(body) => {
            let consistent = sha256(&body) == meta.data_sha256;
            Loaded::Found { meta, body, consistent }
        }
        Err(e) => Loaded::Corrupt(format!("reading data: {e}")),
    }
}
