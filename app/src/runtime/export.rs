//! The retraining export (issue 17, item 6): what users taught, written as
//! the labelled folder tree `postern simulate` and `models/train.py
//! --feedback` read: `DIR/<label>/<account>/<sha256>.eml`, plus
//! `DIR/labels.csv` saying where each label came from. The operator can
//! then measure Postern on their own mail and retrain on it.

use super::{Runtime, RuntimeError};
use crate::store::{Labelled, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The target folder already holds files: an old export mixed with a
    /// new one would keep labels users have since changed.
    #[error("{0} is not empty; export into a new folder")]
    NotEmpty(PathBuf),
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    /// Messages written per label.
    pub written: BTreeMap<String, usize>,
    /// Labels whose stored copy is gone (pruned by retention), by SHA-256.
    pub missing: Vec<String>,
}

/// A folder-safe form of an account name (the tree's source level).
fn folder_name(account: &str) -> String {
    let s: String = account
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with('.') { format!("_{s}") } else { s }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every label users gave, from each source: Junk-folder feedback and the
/// bootstrap (`spam`, `ham`), then decided reports (issue 17, item 3):
/// confirmed ones as `phish`, rejected ones as `ham`.
pub async fn training_labels(store: &Store) -> Result<Vec<Labelled>, RuntimeError> {
    let mut all = store.feedback_labels().await?;
    all.extend(store.report_labels().await?);
    Ok(all)
}

/// Writes the labelled tree into `dir` (created; must be empty). Used by
/// `postern export-training`, which has no running system.
pub async fn export_training(store: &Store, dir: &Path) -> Result<ExportReport, ExportError> {
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(ExportError::NotEmpty(dir.to_path_buf()));
    }
    tokio::fs::create_dir_all(dir).await.map_err(io(dir))?;
    let mut report = ExportReport::default();
    let mut seen = BTreeSet::new();
    let mut csv = String::from("label,source,sha256,message_id,origin,at\n");
    for l in training_labels(store).await? {
        // One copy per label and message, whoever gave it.
        if !seen.insert((l.label.clone(), l.sha256.clone())) {
            continue;
        }
        let folder = dir.join(&l.label).join(folder_name(&l.account));
        tokio::fs::create_dir_all(&folder).await.map_err(io(&folder))?;
        let to = folder.join(format!("{}.eml", l.sha256));
        match tokio::fs::copy(&l.eml_path, &to).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.missing.push(l.sha256.clone());
                continue;
            }
            Err(e) => return Err(io(Path::new(&l.eml_path))(e)),
        }
        *report.written.entry(l.label.clone()).or_default() += 1;
        let row = [
            l.label.as_str(),
            &folder_name(&l.account),
            &l.sha256,
            l.message_id.as_deref().unwrap_or(""),
            &l.origin,
            &l.at,
        ];
        csv.push_str(&row.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        csv.push('\n');
    }
    let manifest = dir.join("labels.csv");
    tokio::fs::write(&manifest, csv).await.map_err(io(&manifest))?;
    Ok(report)
}

impl Runtime {
    /// [`export_training`] on the running system's store.
    pub async fn export_training(&self, dir: &Path) -> Result<ExportReport, ExportError> {
        export_training(&self.store, dir).await
    }
}

/// RFC 4180 quoting.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_become_safe_folder_names() {
        assert_eq!(folder_name("alice"), "alice");
        assert_eq!(folder_name("a/../b c"), "a_.._b_c");
        assert_eq!(folder_name(".."), "_..");
        assert_eq!(folder_name(""), "_");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
