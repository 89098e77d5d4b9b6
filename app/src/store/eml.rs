//! Raw EML copies of every message Postern moves or holds, so nothing is
//! ever removed from a mailbox without a copy on disk.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `raw` to `<dir>/<account>/<sha256>.eml` with mode 0600, fsynced.
/// Content-addressed, so a retry after a crash rewrites the same file.
pub fn store(dir: &Path, account: &str, sha256: &str, raw: &[u8]) -> std::io::Result<PathBuf> {
    let sub = account_dir(dir, account);
    std::fs::create_dir_all(&sub)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700))?;
    let path = sub.join(format!("{sha256}.eml"));
    if path.is_file() && std::fs::metadata(&path)?.len() == raw.len() as u64 {
        return Ok(path);
    }
    let tmp = sub.join(format!(".{sha256}.tmp"));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(raw)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(&sub)?.sync_all()?;
    Ok(path)
}

/// The copy [`store`] wrote for this message, if it is there and not empty.
pub fn existing(dir: &Path, account: &str, sha256: &str) -> Option<PathBuf> {
    let path = account_dir(dir, account).join(format!("{sha256}.eml"));
    std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() > 0).then_some(path)
}

fn account_dir(dir: &Path, account: &str) -> PathBuf {
    let safe: String = account
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' })
        .collect();
    dir.join(safe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eml_is_private_and_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let p = store(d.path(), "al/ice", "abc", b"raw").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"raw");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(p.to_string_lossy().contains("al_ice"));
        assert_eq!(store(d.path(), "al/ice", "abc", b"raw").unwrap(), p);
    }
}
