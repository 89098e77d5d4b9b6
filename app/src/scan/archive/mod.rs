//! Archive listing under one budget per message (issue 18): zip, gzip, tar
//! (and tar.gz), 7z are opened with their crates; RAR and disk images are
//! recognised but cannot be listed. Every byte decompressed and every entry
//! listed is charged to a [`Budget`] shared by all archives of a message, so
//! a zip whose 2,000 entries point at one 20 MB kernel, or a 42.zip, costs at
//! most the budget. Whatever a bound or a broken archive left unseen becomes
//! an [`Issue`]: content that was not inspected is evidence, not a pass.

mod formats;

use super::attach::{ArchiveEntry, extension};

/// Hard bounds on archive work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Archive nesting depth that is still opened (the attachment is depth 1).
    pub depth: u8,
    /// Entries listed per message across all archives.
    pub entries: usize,
    /// Largest nested archive (or gzip payload) decompressed to look inside.
    pub nested_bytes: u64,
    /// Bytes decompressed per top-level archive attachment.
    pub archive_bytes: u64,
    /// Bytes decompressed per message across all archives.
    pub message_bytes: u64,
}

impl Limits {
    /// The shipped bounds (issue 18: a 20 MB kernel behind 2,000 entries took 195 s).
    pub const DEFAULT: Limits = Limits {
        depth: 3,
        entries: 10_000,
        nested_bytes: 20 * 1024 * 1024,
        archive_bytes: 32 * 1024 * 1024,
        message_bytes: 64 * 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Work done on the archives of one message, against its [`Limits`].
#[derive(Debug, Clone, Default)]
pub struct Budget {
    /// The bounds.
    pub limits: Limits,
    /// Bytes decompressed so far.
    pub bytes: u64,
    /// Entries listed so far.
    pub entries: usize,
}

impl Budget {
    /// A fresh budget.
    pub fn new(limits: Limits) -> Self {
        Budget {
            limits,
            ..Default::default()
        }
    }
}

/// Why part of an archive was not inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueKind {
    /// A depth, byte or entry bound stopped the listing.
    Limit,
    /// The archive is corrupt, encrypted down to its file list, or of a
    /// format Postern cannot list (RAR, disk images, xz, …).
    Unreadable,
}

/// One thing an archive kept from view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Issue {
    /// Which kind.
    pub kind: IssueKind,
    /// What and where, for the explanation.
    pub detail: String,
}

/// Recognised container formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Zip,
    Gzip,
    Tar,
    SevenZ,
    Rar,
    DiskImage,
    /// Compressed or archive formats without a reader here.
    Unsupported(&'static str),
}

/// Extensions of containers; a name alone is enough to try (a zip may carry
/// a junk prefix, which unzip tools skip) and to complain when it fails.
const ARCHIVE_EXTS: &[(&str, Format)] = &[
    ("zip", Format::Zip),
    ("gz", Format::Gzip),
    ("tgz", Format::Gzip),
    ("tar", Format::Tar),
    ("7z", Format::SevenZ),
    ("rar", Format::Rar),
    ("iso", Format::DiskImage),
    ("img", Format::DiskImage),
    ("vhd", Format::DiskImage),
    ("vhdx", Format::DiskImage),
    ("xz", Format::Unsupported("xz")),
    ("txz", Format::Unsupported("xz")),
    ("bz2", Format::Unsupported("bzip2")),
    ("tbz2", Format::Unsupported("bzip2")),
    ("zst", Format::Unsupported("zstd")),
    ("cab", Format::Unsupported("cab")),
    ("arj", Format::Unsupported("arj")),
    ("lzh", Format::Unsupported("lzh")),
    ("ace", Format::Unsupported("ace")),
];

/// Format from magic bytes, then from the name.
fn sniff(data: &[u8], name: &str) -> Option<Format> {
    let magic = if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        Some(Format::Zip)
    } else if data.starts_with(b"\x1f\x8b") {
        Some(Format::Gzip)
    } else if data.starts_with(b"7z\xbc\xaf\x27\x1c") {
        Some(Format::SevenZ)
    } else if data.starts_with(b"Rar!\x1a\x07") {
        Some(Format::Rar)
    } else if data.get(257..262) == Some(b"ustar") {
        Some(Format::Tar)
    } else if [0x8001usize, 0x8801, 0x9001].iter().any(|&o| data.get(o..o + 5) == Some(b"CD001")) {
        Some(Format::DiskImage)
    } else if data.starts_with(b"\xfd7zXZ\x00") {
        Some(Format::Unsupported("xz"))
    } else if data.starts_with(b"BZh") && data.len() > 10 {
        Some(Format::Unsupported("bzip2"))
    } else if data.starts_with(b"MSCF") {
        Some(Format::Unsupported("cab"))
    } else {
        None
    };
    magic.or_else(|| by_name(name))
}

fn by_name(name: &str) -> Option<Format> {
    let ext = extension(name)?;
    ARCHIVE_EXTS.iter().find(|(e, _)| *e == ext).map(|(_, f)| *f)
}

/// Whether an entry's name says it is a container worth opening.
fn is_archive_name(name: &str) -> bool {
    by_name(name).is_some()
}

/// Whether `data` (named `name`) is a container this module deals with.
pub fn is_archive(data: &[u8], name: &str) -> bool {
    sniff(data, name).is_some()
}

/// Lists one attachment's archive, charging `budget`. Returns the entries
/// and what could not be inspected; both empty for non-archives.
pub fn list(data: &[u8], name: &str, budget: &mut Budget) -> (Vec<ArchiveEntry>, Vec<Issue>) {
    let mut walk = Walk {
        budget,
        archive_bytes: 0,
        entries: Vec::new(),
        issues: Vec::new(),
    };
    walk.open(data, name, "", 1);
    (walk.entries, walk.issues)
}

/// One top-level archive being listed.
struct Walk<'b> {
    budget: &'b mut Budget,
    /// Bytes decompressed for this top-level archive.
    archive_bytes: u64,
    entries: Vec<ArchiveEntry>,
    issues: Vec<Issue>,
}

impl Walk<'_> {
    fn issue(&mut self, kind: IssueKind, detail: String) {
        // A 42.zip would report the same bound thousands of times.
        if self.issues.len() < 20 && !self.issues.iter().any(|i| i.detail == detail) {
            self.issues.push(Issue { kind, detail });
        }
    }

    fn limit(&mut self, detail: String) {
        self.issue(IssueKind::Limit, detail);
    }

    fn unreadable(&mut self, detail: String) {
        self.issue(IssueKind::Unreadable, detail);
    }

    /// Bytes that may still be decompressed for one nested payload.
    fn allowance(&self) -> u64 {
        let l = &self.budget.limits;
        l.nested_bytes
            .min(l.archive_bytes.saturating_sub(self.archive_bytes))
            .min(l.message_bytes.saturating_sub(self.budget.bytes))
    }

    fn charge(&mut self, n: u64) {
        self.archive_bytes = self.archive_bytes.saturating_add(n);
        self.budget.bytes = self.budget.bytes.saturating_add(n);
    }

    /// Records an entry; false once the entry budget is spent.
    fn push(&mut self, path: String, size: u64, encrypted: bool) -> bool {
        if self.budget.entries >= self.budget.limits.entries {
            let n = self.budget.limits.entries;
            self.limit(format!("archive listing stopped at {n} entries"));
            return false;
        }
        self.budget.entries += 1;
        self.entries.push(ArchiveEntry { path, size, encrypted });
        true
    }

    /// Whether a nested archive at `path` (inside depth `depth`) may be opened
    /// and how many bytes it may take; reports the bound that says no.
    fn nested_allowance(&mut self, path: &str, depth: u8, declared: Option<u64>) -> Option<u64> {
        let max = self.budget.limits.depth;
        if depth >= max {
            self.limit(format!("archive nesting deeper than {max} at {path}"));
            return None;
        }
        let allow = self.allowance();
        if allow == 0 || declared.is_some_and(|d| d > allow) {
            let size = declared.map_or(String::new(), |d| format!(" ({d} bytes)"));
            self.limit(format!("nested archive {path}{size} exceeds the decompression budget"));
            return None;
        }
        Some(allow)
    }

    /// Reads at most `allow` bytes of a payload, charging them; a payload
    /// longer than that is reported and the part read is returned.
    fn read_bounded(&mut self, path: &str, allow: u64, r: &mut dyn std::io::Read) -> Option<Vec<u8>> {
        use std::io::Read;
        let mut buf = Vec::new();
        let res = r.take(allow.saturating_add(1)).read_to_end(&mut buf);
        let over = buf.len() as u64 > allow;
        buf.truncate(usize::try_from(allow).unwrap_or(usize::MAX));
        self.charge(buf.len() as u64);
        if let Err(e) = res {
            self.unreadable(format!("{path} could not be decompressed: {e}"));
            return None;
        }
        if over {
            self.limit(format!("{path} exceeds the decompression budget; only its start was inspected"));
        }
        Some(buf)
    }

    /// Opens a container; `name` is its own name, `prefix` the path of
    /// entries inside it so far, `depth` its nesting level.
    fn open(&mut self, data: &[u8], name: &str, prefix: &str, depth: u8) {
        let Some(format) = sniff(data, name) else { return };
        let at = if prefix.is_empty() {
            String::new()
        } else {
            format!(" at {}", prefix.trim_end_matches('!'))
        };
        match format {
            Format::Zip => self.zip(data, prefix, depth, &at),
            Format::Gzip => self.gzip(data, name, prefix, depth),
            Format::Tar => self.tar(data, prefix, depth, &at),
            Format::SevenZ => self.sevenz(data, prefix, depth, &at),
            Format::Rar => self.unreadable(format!("RAR archive{at} not inspected (no maintained free RAR reader)")),
            Format::DiskImage => self.unreadable(format!("disk image{at} not inspected")),
            Format::Unsupported(kind) => self.unreadable(format!("{kind} archive{at} not inspected")),
        }
    }

    /// Opens a nested payload read from inside another archive.
    fn open_nested(&mut self, data: &[u8], path: &str, depth: u8) {
        self.open(data, path, &format!("{path}!"), depth + 1);
    }
}

#[cfg(test)]
pub(crate) mod tests;
