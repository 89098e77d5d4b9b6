//! One lister per format, each a thin layer over its crate (zip, flate2,
//! tar, sevenz-rust2). They list names, and decompress only payloads that
//! are themselves archives, always through the walk's budget.

use super::{Walk, is_archive_name};
use std::io::Cursor;

/// Memory bound for 7z header buffers and decoder dictionaries, in KiB.
const SEVENZ_MEMORY_KB: usize = 64 * 1024;

impl Walk<'_> {
    pub(super) fn zip(&mut self, data: &[u8], prefix: &str, depth: u8, at: &str) {
        let mut zip = match zip::ZipArchive::new(Cursor::new(data)) {
            Ok(z) => z,
            Err(e) => return self.unreadable(format!("unreadable zip archive{at}: {e}")),
        };
        for i in 0..zip.len() {
            let (path, size, encrypted) = match zip.by_index_raw(i) {
                Ok(e) => (format!("{prefix}{}", e.name().unwrap_or_default()), e.size(), e.encrypted()),
                Err(e) => {
                    self.unreadable(format!("zip entry {i}{at} unreadable: {e}"));
                    continue;
                }
            };
            if !self.push(path.clone(), size, encrypted) {
                return;
            }
            if encrypted || !is_archive_name(&path) {
                continue;
            }
            let Some(allow) = self.nested_allowance(&path, depth, Some(size)) else {
                continue;
            };
            let inner = match zip.by_index(i) {
                Ok(mut f) => self.read_bounded(&path, allow, &mut f),
                Err(e) => {
                    self.unreadable(format!("{path} could not be opened: {e}"));
                    None
                }
            };
            if let Some(inner) = inner {
                self.open_nested(&inner, &path, depth);
            }
        }
    }

    /// A gzip stream holds one file: its name comes from the header, or
    /// from the container's name less `.gz` (what unpacking tools use).
    pub(super) fn gzip(&mut self, data: &[u8], name: &str, prefix: &str, depth: u8) {
        let base = name.rsplit(['!', '/', '\\']).next().unwrap_or(name);
        let lower = base.to_ascii_lowercase();
        let stripped = if let Some(stem) = lower.strip_suffix(".tgz") {
            format!("{}.tar", &base[..stem.len()])
        } else if let Some(stem) = lower.strip_suffix(".gz") {
            base[..stem.len()].to_string()
        } else {
            String::new()
        };
        let path = format!("{prefix}{stripped}");
        let Some(allow) = self.nested_allowance(&path, depth, None) else {
            return;
        };
        let mut dec = flate2::read::GzDecoder::new(data);
        let payload = self.read_bounded(&path, allow, &mut dec);
        let header_name = dec
            .header()
            .and_then(|h| h.filename())
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .filter(|f| !f.is_empty());
        // read_bounded has reported why.
        let Some(payload) = payload else { return };
        let mut names: Vec<String> = Vec::new();
        if !stripped.is_empty() {
            names.push(path.clone());
        }
        // The header name may differ from the attachment's: list both, since
        // either can end up as the extracted file's name.
        if let Some(h) = header_name.map(|h| format!("{prefix}{h}"))
            && !names.contains(&h)
        {
            names.push(h);
        }
        if names.is_empty() {
            names.push(format!("{prefix}(gzip content)"));
        }
        for n in &names {
            if !self.push(n.clone(), payload.len() as u64, false) {
                return;
            }
        }
        let inner_name = names
            .iter()
            .find(|n| is_archive_name(n))
            .or(names.first())
            .cloned()
            .unwrap_or_default();
        if super::sniff(&payload, &inner_name).is_some() {
            self.open_nested(&payload, &inner_name, depth);
        }
    }

    pub(super) fn tar(&mut self, data: &[u8], prefix: &str, depth: u8, at: &str) {
        let mut ar = tar::Archive::new(Cursor::new(data));
        let entries = match ar.entries() {
            Ok(e) => e,
            Err(e) => return self.unreadable(format!("unreadable tar archive{at}: {e}")),
        };
        let mut listed = 0usize;
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => return self.unreadable(format!("tar archive{at} unreadable after {listed} entries: {e}")),
            };
            let path = format!("{prefix}{}", String::from_utf8_lossy(&entry.path_bytes()));
            let size = entry.size();
            if !self.push(path.clone(), size, false) {
                return;
            }
            listed += 1;
            if !entry.header().entry_type().is_file() || !is_archive_name(&path) {
                continue;
            }
            let Some(allow) = self.nested_allowance(&path, depth, Some(size)) else {
                continue;
            };
            if let Some(inner) = self.read_bounded(&path, allow, &mut entry) {
                self.open_nested(&inner, &path, depth);
            }
        }
        if listed == 0 && !data.is_empty() {
            self.unreadable(format!("tar archive{at} has no readable entries"));
        }
    }

    pub(super) fn sevenz(&mut self, data: &[u8], prefix: &str, depth: u8, at: &str) {
        use sevenz_rust2::{Archive, ArchiveReader, EntryDecision, Password};
        let archive = match Archive::read_with_memory_limit(&mut Cursor::new(data), &Password::empty(), SEVENZ_MEMORY_KB) {
            Ok(a) => a,
            Err(e) => return self.unreadable(format!("7z archive{at} could not be listed: {e}")),
        };
        let mut wanted = false;
        for (i, f) in archive.files.iter().enumerate() {
            let path = format!("{prefix}{}", f.name());
            let encrypted = archive.is_file_encrypted(i);
            wanted |= !encrypted && !f.is_directory() && is_archive_name(&path);
            if !self.push(path, f.size(), encrypted) {
                return;
            }
        }
        if !wanted {
            return;
        }
        // Solid blocks decode every entry before the one wanted, and their
        // declared sizes bound that work, so each entry passed is charged.
        let mut reader = ArchiveReader::from_archive(archive, Cursor::new(data), Password::empty());
        reader.set_thread_count(1);
        let mut nested: Vec<(String, Vec<u8>)> = Vec::new();
        let res = reader.for_each_entries_with_decision(|entry, r| {
            let path = format!("{prefix}{}", entry.name());
            let open = !entry.is_directory() && is_archive_name(&path);
            if let Some(allow) = open.then(|| self.nested_allowance(&path, depth, Some(entry.size()))).flatten() {
                if let Some(inner) = self.read_bounded(&path, allow, r) {
                    nested.push((path, inner));
                }
                return Ok(EntryDecision::Continue);
            }
            // Passing an entry decodes it whole (Continue drains it).
            if entry.size() > self.allowance() {
                self.limit(format!("7z archive{at} exceeds the decompression budget at {path}"));
                return Ok(EntryDecision::Stop);
            }
            self.charge(entry.size());
            Ok(EntryDecision::Continue)
        });
        if let Err(e) = res {
            self.unreadable(format!("7z archive{at} could not be decompressed: {e}"));
        }
        for (path, inner) in nested {
            self.open_nested(&inner, &path, depth);
        }
    }
}
