//! Attachment facts: declared and sniffed type, size, hash, and the file
//! list of zip archives (nested ones included, encrypted entries flagged),
//! all under hard limits so a zip bomb costs bounded memory.

use sha2::{Digest, Sha256};
use std::io::{Cursor, Read};

/// Archive nesting depth that is still opened.
pub const MAX_ARCHIVE_DEPTH: u8 = 3;
/// Entries listed per message across all archives.
pub const MAX_ARCHIVE_ENTRIES: usize = 10_000;
/// Largest nested archive that is decompressed to look inside.
pub const MAX_NESTED_ARCHIVE_BYTES: u64 = 20 * 1024 * 1024;

/// One attachment.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Attachment {
    /// File name as declared.
    pub name: Option<String>,
    /// Lower-case extension of the name.
    pub ext: Option<String>,
    /// Declared Content-Type.
    pub declared: String,
    /// Type sniffed from magic bytes.
    pub sniffed: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Files inside, if it is a zip.
    pub entries: Vec<ArchiveEntry>,
    /// Decoded content (shared, not serialised), for content scanners.
    #[serde(skip)]
    pub data: std::sync::Arc<Vec<u8>>,
}

/// A file inside an archive.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveEntry {
    /// Path inside the archive (nested archives joined with `!`).
    pub path: String,
    /// Uncompressed size as declared.
    pub size: u64,
    /// Password protected.
    pub encrypted: bool,
}

/// Lower-case extension of a file name.
pub fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.rsplit_once('.')
        .map(|(_, e)| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e.len() <= 10)
}

/// Builds the facts of one attachment. `limit_hit` is called when a bound stops the listing.
pub fn describe(name: Option<&str>, declared: &str, data: &[u8], limit_hit: &mut dyn FnMut(String)) -> Attachment {
    let mut a = Attachment {
        name: name.map(str::to_string),
        ext: name.and_then(extension),
        declared: declared.to_ascii_lowercase(),
        sniffed: infer::get(data).map(|t| t.mime_type().to_string()),
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
        entries: Vec::new(),
        data: std::sync::Arc::new(data.to_vec()),
    };
    if is_zip(data) {
        list_zip(data, "", 1, &mut a.entries, limit_hit);
    }
    a
}

fn is_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

fn list_zip(data: &[u8], prefix: &str, depth: u8, out: &mut Vec<ArchiveEntry>, limit_hit: &mut dyn FnMut(String)) {
    let Ok(mut zip) = zip::ZipArchive::new(Cursor::new(data)) else {
        limit_hit(format!(
            "unreadable zip archive{}",
            if prefix.is_empty() {
                String::new()
            } else {
                format!(" at {prefix}")
            }
        ));
        return;
    };
    for i in 0..zip.len() {
        if out.len() >= MAX_ARCHIVE_ENTRIES {
            limit_hit(format!("archive listing stopped at {MAX_ARCHIVE_ENTRIES} entries"));
            return;
        }
        let Ok(entry) = zip.by_index_raw(i) else { continue };
        let path = format!("{prefix}{}", entry.name().unwrap_or_default());
        let (size, encrypted) = (entry.size(), entry.encrypted());
        drop(entry);
        out.push(ArchiveEntry {
            path: path.clone(),
            size,
            encrypted,
        });
        let nested = extension(&path).is_some_and(|e| e == "zip");
        if !nested || encrypted {
            continue;
        }
        if depth >= MAX_ARCHIVE_DEPTH {
            limit_hit(format!("archive nesting deeper than {MAX_ARCHIVE_DEPTH} at {path}"));
            continue;
        }
        if size > MAX_NESTED_ARCHIVE_BYTES {
            limit_hit(format!("nested archive {path} too large to open ({size} bytes)"));
            continue;
        }
        let mut inner = Vec::new();
        let read = zip
            .by_index(i)
            .ok()
            .map(|f| f.take(MAX_NESTED_ARCHIVE_BYTES).read_to_end(&mut inner));
        if matches!(read, Some(Ok(_))) {
            list_zip(&inner, &format!("{path}!"), depth + 1, out, limit_hit);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, data) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        buf.into_inner()
    }

    #[test]
    fn lists_nested_zips_and_sniffs() {
        let inner = zip_of(&[("payload.exe", b"MZ\x90\x00rest")]);
        let outer = zip_of(&[("readme.txt", b"hi"), ("inner.zip", &inner)]);
        let mut hits = Vec::new();
        let a = describe(Some("Invoice.ZIP"), "application/zip", &outer, &mut |h| hits.push(h));
        assert_eq!(a.ext.as_deref(), Some("zip"));
        assert_eq!(a.sniffed.as_deref(), Some("application/zip"));
        let paths: Vec<_> = a.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["readme.txt", "inner.zip", "inner.zip!payload.exe"]);
        assert!(hits.is_empty());
    }

    #[test]
    fn depth_limit_is_reported_not_followed() {
        let mut z = zip_of(&[("x.exe", b"MZ")]);
        for i in 0..5 {
            z = zip_of(&[(&format!("l{i}.zip"), &z)]);
        }
        let mut hits = Vec::new();
        let a = describe(Some("deep.zip"), "application/zip", &z, &mut |h| hits.push(h));
        assert!(hits.iter().any(|h| h.contains("nesting")), "{hits:?}");
        assert!(a.entries.len() <= 4);
    }

    #[test]
    fn garbage_is_harmless() {
        let mut hits = Vec::new();
        let a = describe(None, "application/zip", b"PK\x03\x04garbage", &mut |h| hits.push(h));
        assert!(a.entries.is_empty());
        assert_eq!(extension("a.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension("noext"), None);
    }
}
