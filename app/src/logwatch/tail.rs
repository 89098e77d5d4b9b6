//! Following a log file across rotation, with a cursor that can be stored.
//!
//! The file is opened afresh on every read (never held open), so renames
//! are seen through inodes and first bytes (the cursor keeps a hash of the
//! first 256 bytes):
//! - same inode and same first bytes, not shorter than the offset: it grew;
//! - otherwise the content the offset points into is looked for beside it:
//!   `<path>.1`/`.0`/`.2` with the cursor's inode (renamed) or first bytes
//!   (copied by copytruncate), or `<path>.1.gz`/`.0.gz`/`.2.gz` with the
//!   same first bytes once decompressed (rotated and compressed). Its rest
//!   is read, then the current file from its start;
//! - nothing found: the current file is read from its start (truncated in
//!   place, or the old file is gone and its unread tail with it).
//!
//! Only whole lines are returned; a line still being written waits for
//! the next read, so the offset always sits at a line boundary.

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes at the start of a file that identify it across renames and compression.
const HEAD: u64 = 256;

/// Where reading stopped: enough to resume after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Inode of the file the offset belongs to.
    pub inode: u64,
    /// Bytes consumed (always at a line boundary).
    pub offset: u64,
    /// How many leading bytes `head` covers (up to 256).
    pub head_len: u64,
    /// SHA-256 (hex) of those bytes.
    pub head: String,
}

/// One read.
#[derive(Debug, Default)]
pub struct Batch {
    /// Whole lines, without their line ends.
    pub lines: Vec<String>,
    /// Where to resume; `None` while the file does not exist.
    pub cursor: Option<Cursor>,
    /// Another read would return more at once (a bound was hit or the
    /// reader moved to the next file).
    pub more: bool,
    /// What happened to the file, when something did.
    pub note: Option<String>,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn head_of(r: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len as usize);
    r.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A cursor at `offset` of `f`, identified by its first bytes.
fn identify(f: &mut File, inode: u64, offset: u64) -> io::Result<Cursor> {
    f.seek(SeekFrom::Start(0))?;
    let head = head_of(f, HEAD)?;
    Ok(Cursor {
        inode,
        offset,
        head_len: head.len() as u64,
        head: hash(&head),
    })
}

/// Reads up to `max` bytes of `r` and keeps the whole lines: with
/// `take_rest` (the file will not grow any more) a last unterminated line
/// too; a bound filled by a single line counts as that (cut) line, so a
/// monster line cannot stall the reader. Returns the lines, the bytes they
/// used and whether the bound was hit.
fn read_some(r: &mut impl Read, max: usize, take_rest: bool) -> io::Result<(Vec<String>, u64, bool)> {
    let mut buf = Vec::with_capacity(max.min(1 << 20));
    r.take(max as u64).read_to_end(&mut buf)?;
    let full = buf.len() == max;
    let used = match buf.iter().rposition(|&b| b == b'\n') {
        _ if take_rest && !full => buf.len(),
        Some(i) => i + 1,
        None if full => buf.len(),
        None => 0,
    };
    let lines = buf[..used]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    Ok((lines, used as u64, full))
}

/// Whether the file at `p` starts with the bytes the cursor remembers.
fn same_head(r: &mut impl Read, c: &Cursor) -> io::Result<bool> {
    let h = head_of(r, c.head_len)?;
    Ok(h.len() as u64 == c.head_len && hash(&h) == c.head)
}

/// The earlier content `c` points into, now elsewhere: a sibling with the
/// cursor's inode (renamed) or its first bytes (copied by copytruncate, or
/// compressed), opened at the cursor's offset.
fn rotated(path: &Path, c: &Cursor) -> io::Result<Option<(Box<dyn Read>, String)>> {
    for suffix in [".1", ".0", ".2"] {
        let p = sibling(path, suffix);
        let Ok(mut f) = File::open(&p) else { continue };
        let by_inode = f.metadata()?.ino() == c.inode;
        if by_inode || (c.head_len > 0 && same_head(&mut f, c)?) {
            f.seek(SeekFrom::Start(c.offset))?;
            return Ok(Some((Box::new(f), p.display().to_string())));
        }
    }
    // A compressed file has a new inode: recognise it by its first bytes.
    if c.head_len == 0 {
        return Ok(None);
    }
    for suffix in [".1.gz", ".0.gz", ".2.gz"] {
        let p = sibling(path, suffix);
        let Ok(f) = File::open(&p) else { continue };
        if !same_head(&mut GzDecoder::new(f), c).unwrap_or(false) {
            continue;
        }
        let mut z = GzDecoder::new(File::open(&p)?);
        io::copy(&mut (&mut z).take(c.offset), &mut io::sink())?;
        return Ok(Some((Box::new(z), p.display().to_string())));
    }
    Ok(None)
}

/// Reads what was added to `path` since `cursor`, at most `max` bytes.
/// Without a cursor (a file never seen), starts at its current end.
pub fn read(path: &Path, cursor: Option<&Cursor>, max: usize) -> io::Result<Batch> {
    let max = max.max(1);
    let mut f = match File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let meta = f.as_ref().map(File::metadata).transpose()?;
    let Some(c) = cursor.cloned() else {
        return Ok(match (&mut f, meta) {
            (Some(f), Some(m)) => Batch {
                cursor: Some(identify(f, m.ino(), m.len())?),
                note: Some("first seen: reading from its end".into()),
                ..Batch::default()
            },
            _ => Batch::default(),
        });
    };
    let mut in_place = false;
    if let (Some(file), Some(m)) = (&mut f, &meta)
        && m.ino() == c.inode
    {
        file.seek(SeekFrom::Start(0))?;
        if m.len() >= c.offset && same_head(file, &c)? {
            return append(file, c, max);
        }
        in_place = true;
    }
    // Rotated, copied and truncated, or replaced: finish the old content first.
    let (lines, old) = match rotated(path, &c)? {
        Some((mut old, name)) => {
            let (lines, used, full) = read_some(&mut old, max, true)?;
            if full {
                let cursor = Cursor {
                    offset: c.offset + used,
                    ..c
                };
                return Ok(Batch {
                    lines,
                    cursor: Some(cursor),
                    more: true,
                    note: None,
                });
            }
            (lines, Some((name, used)))
        }
        None => (Vec::new(), None),
    };
    // Until the new file exists, stay at the end of the old one.
    let next = next_file(f, meta.as_ref())?;
    let switched = next.is_some();
    let used = old.as_ref().map_or(0, |o| o.1);
    let note = match (&old, in_place) {
        (Some((name, _)), true) => format!("truncated in place (copytruncate): finished {name}, reading from the start"),
        (Some((name, _)), false) => format!("rotated: finished {name}"),
        (None, true) => "truncated in place: reading from the start".into(),
        (None, false) => format!(
            "rotated: the old file (inode {}) was not found; reading the new one from its start",
            c.inode
        ),
    };
    Ok(Batch {
        lines,
        cursor: next.or(Some(Cursor {
            offset: c.offset + used,
            ..c
        })),
        more: switched,
        note: switched.then_some(note),
    })
}

fn next_file(f: Option<File>, meta: Option<&std::fs::Metadata>) -> io::Result<Option<Cursor>> {
    match (f, meta) {
        (Some(mut f), Some(m)) => Ok(Some(identify(&mut f, m.ino(), 0)?)),
        _ => Ok(None),
    }
}

/// The same file, grown (or not): read on from the offset.
fn append(f: &mut File, c: Cursor, max: usize) -> io::Result<Batch> {
    f.seek(SeekFrom::Start(c.offset))?;
    let (lines, used, full) = read_some(f, max, false)?;
    // The head grows with a young file; it is stable once 256 bytes long.
    let mut cursor = if c.head_len < HEAD {
        identify(f, c.inode, c.offset)?
    } else {
        c.clone()
    };
    cursor.offset = c.offset + used;
    Ok(Batch {
        lines,
        cursor: Some(cursor),
        more: full,
        note: None,
    })
}

#[cfg(test)]
mod tests;
