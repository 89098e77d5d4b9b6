//! The attacker blocklist file (issue 20, outputs): the current log-watch
//! indicators (addresses and networks, not expired, not marked false
//! positives), one per line, for an nftables set or a fail2ban action to
//! load. The file is replaced whole: written to a temporary file in the same
//! folder, flushed to disk, renamed over the old one, and the folder
//! flushed, so a reader sees the old list or the new one, never a part.

use super::{Runtime, RuntimeError};
use crate::store::BlockEntry;
use std::io::Write;
use std::path::Path;

/// The file's text: sorted, de-duplicated, addresses then networks, each
/// line ending in a newline; no comments, so any line reader can load it.
pub fn render(entries: &[BlockEntry], now: &str) -> String {
    let mut lines: Vec<(u8, &str)> = entries
        .iter()
        .filter(|e| crate::store::indicator_is_live(e.expires_at.as_deref(), now))
        .map(|e| (u8::from(e.kind != "ip"), e.value.as_str()))
        .collect();
    lines.sort();
    lines.dedup();
    lines.into_iter().map(|(_, v)| format!("{v}\n")).collect()
}

/// Replaces `path` with `text` atomically (see the module comment).
/// Returns false, writing nothing, when the file already holds `text`.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(false);
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let written = write_then_rename(&tmp, path, text.as_bytes());
    if let Err(e) = written {
        // Best effort: the write failed already, and that error is the one to report.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself must reach the disk, or a crash could bring back the old name.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(true)
}

/// Writes `bytes` to the new file `tmp`, flushes it and renames it to `path`.
fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(tmp)?;
    // Readable by the firewall's loader, which may run as another user.
    #[cfg(unix)]
    f.set_permissions(<std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

impl Runtime {
    /// Rewrites the blocklist file when one is configured and its content
    /// changed (new attackers, expiries). Returns the entries written, or
    /// `None` when nothing was written.
    pub async fn refresh_blocklist(&self) -> Result<Option<usize>, RuntimeError> {
        let Some(path) = self.settings.logwatch.blocklist.clone() else {
            return Ok(None);
        };
        let entries = self.store.logwatch_block_entries().await?;
        let text = render(&entries, &self.store.now());
        let n = text.lines().count();
        let p = path.clone();
        let wrote = tokio::task::spawn_blocking(move || write_atomic(&p, &text))
            .await
            .map_err(|e| RuntimeError::Invalid(format!("blocklist writer failed: {e}")))?
            .map_err(|e| RuntimeError::Invalid(format!("blocklist {}: {e}", path.display())))?;
        if wrote {
            tracing::info!(path = %path.display(), entries = n, "blocklist rewritten");
        }
        Ok(wrote.then_some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, value: &str, expires: Option<&str>) -> BlockEntry {
        BlockEntry {
            kind: kind.into(),
            value: value.into(),
            expires_at: expires.map(str::to_string),
        }
    }

    #[test]
    fn only_live_indicators_one_per_line_addresses_first() {
        let now = "2026-12-02T12:00:00.000Z";
        let entries = vec![
            entry("cidr", "203.0.113.0/24", Some("2026-12-09T00:00:00Z")),
            entry("ip", "2001:db8::7", None),
            entry("ip", "198.51.100.7", Some("2026-12-02T11:59:59Z")),
            entry("ip", "203.0.113.9", Some("2026-12-03T00:00:00Z")),
        ];
        assert_eq!(render(&entries, now), "2001:db8::7\n203.0.113.9\n203.0.113.0/24\n");
        assert_eq!(render(&[], now), "", "no attackers: an empty file, which every loader accepts");
        // Later, the address expires and drops out.
        assert_eq!(render(&entries, "2026-12-03T00:00:01.000Z"), "2001:db8::7\n203.0.113.0/24\n");
    }

    #[test]
    fn the_file_is_replaced_whole_and_left_alone_when_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attackers.txt");
        assert!(write_atomic(&path, "192.0.2.1\n").unwrap());
        assert!(!write_atomic(&path, "192.0.2.1\n").unwrap(), "same content: no rewrite");
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&path);
        assert!(write_atomic(&path, "").unwrap());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        assert_ne!(inode(&path), before, "a new file renamed over the old, not rewritten in place");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("attackers.txt")],
            "no temporary file left behind"
        );
    }

    #[test]
    fn a_reader_only_ever_sees_a_whole_old_or_new_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attackers.txt");
        // Big enough that a non-atomic write would be seen half done.
        let a: String = (0..20_000).map(|i| format!("10.{}.{}.1\n", i / 256, i % 256)).collect();
        let b: String = (0..15_000).map(|i| format!("2001:db8::{i:x}\n")).collect();
        write_atomic(&path, &a).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, a, b, stop) = (path.clone(), a.clone(), b.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
                    let got = std::fs::read_to_string(&path).unwrap();
                    assert!(got == a || got == b, "a partial list was visible ({} bytes)", got.len());
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..60 {
            write_atomic(&path, if i % 2 == 0 { b.as_str() } else { a.as_str() }).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }
}
