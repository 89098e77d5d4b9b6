//! Attachment facts: declared and sniffed type, size, hash, and the file
//! list of archives (nested ones included, encrypted entries flagged), listed
//! by [`super::archive`] under one budget per message so a bomb costs bounded
//! work, with whatever stayed uninspected recorded.

use super::archive::{self, Budget, Issue};
use sha2::{Digest, Sha256};

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
    /// Files inside, if it is an archive.
    pub entries: Vec<ArchiveEntry>,
    /// Parts of the archive that could not be inspected (bounds hit,
    /// corrupt or unsupported formats).
    pub issues: Vec<Issue>,
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

/// Builds the facts of one attachment; archive work is charged to `budget`,
/// which is shared by every attachment of the message.
pub fn describe(name: Option<&str>, declared: &str, data: &[u8], budget: &mut Budget) -> Attachment {
    let (entries, issues) = archive::list(data, name.unwrap_or(""), budget);
    Attachment {
        name: name.map(str::to_string),
        ext: name.and_then(extension),
        declared: declared.to_ascii_lowercase(),
        sniffed: infer::get(data).map(|t| t.mime_type().to_string()),
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
        entries,
        issues,
        data: std::sync::Arc::new(data.to_vec()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Cursor, Write};

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
        let a = describe(Some("Invoice.ZIP"), "application/zip", &outer, &mut Budget::default());
        assert_eq!(a.ext.as_deref(), Some("zip"));
        assert_eq!(a.sniffed.as_deref(), Some("application/zip"));
        let paths: Vec<_> = a.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec!["readme.txt", "inner.zip", "inner.zip!payload.exe"]);
        assert!(a.issues.is_empty());
    }

    #[test]
    fn depth_limit_is_reported_not_followed() {
        let mut z = zip_of(&[("x.exe", b"MZ")]);
        for i in 0..5 {
            z = zip_of(&[(&format!("l{i}.zip"), &z)]);
        }
        let a = describe(Some("deep.zip"), "application/zip", &z, &mut Budget::default());
        assert!(a.issues.iter().any(|h| h.detail.contains("nesting")), "{:?}", a.issues);
        assert!(a.entries.len() <= 4);
    }

    #[test]
    fn garbage_is_harmless() {
        let a = describe(None, "application/zip", b"PK\x03\x04garbage", &mut Budget::default());
        assert!(a.entries.is_empty());
        assert_eq!(a.issues.len(), 1, "a broken zip is reported");
        assert_eq!(extension("a.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension("noext"), None);
    }
}
