//! `postern simulate DIR`: runs the pipeline over a labelled corpus
//! (subfolders named `ham`, `spam`, `phish`, `malware`, each optionally split
//! into sources: `ham/lists-2024/…`) and reports verdicts per class and per
//! source, precision and recall, a score-cut sweep, tag hit counts and the
//! slowest messages. Used to tune `rules/policy.toml` for few false positives;
//! `--json FILE` writes the [`summary::Summary`] that `make quality` reads.

pub mod summary;

use crate::domain::Verdict;
use crate::scan::Pipeline;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest file read as one message.
const MAX_FILE: u64 = 20 * 1024 * 1024;

/// One scanned corpus file.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Folder label.
    pub label: String,
    /// First folder under the label (`-` for files directly in it).
    pub source: String,
    /// File.
    pub path: PathBuf,
    /// Verdict.
    pub verdict: Verdict,
    /// Policy score.
    pub score: f64,
    /// Tags.
    pub tags: Vec<String>,
    /// What each scanner reported (for `--dump`: per-message evidence to
    /// tune the policy on, e.g. Rspamd's symbols and the AI probabilities).
    pub reports: Vec<crate::domain::ScannerReport>,
    /// Wall time.
    pub elapsed: Duration,
}

/// A corpus file left out of the run, and why (issue 18: files were
/// skipped without a mention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Folder label.
    pub label: String,
    /// File.
    pub path: PathBuf,
    /// Why it was not scanned.
    pub reason: String,
}

/// One corpus file to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Folder label.
    pub label: String,
    /// First folder under the label (`-` for files directly in it).
    pub source: String,
    /// File.
    pub path: PathBuf,
}

/// The files to scan and the ones left out.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// Files to scan.
    pub files: Vec<Item>,
    /// Files left out, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Files per label (`label/**/file`), sorted, at most `limit` per label.
/// Empty files and files over 20 MB are listed in [`Corpus::skipped`].
pub fn corpus(dir: &Path, limit: Option<usize>) -> std::io::Result<Corpus> {
    let mut out = Corpus::default();
    let mut labels: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    labels.sort();
    for l in labels {
        let label = l.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let mut files = Vec::new();
        let mut stack = vec![l.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)?.filter_map(|e| e.ok()) {
                let p = e.path();
                let Ok(m) = e.metadata() else { continue };
                let reason = if m.is_dir() {
                    stack.push(p);
                    continue;
                } else if p.extension().is_some_and(|x| x == "mbox") {
                    "mbox file (one message per file expected)".to_string()
                } else if m.len() == 0 {
                    "empty file".to_string()
                } else if m.len() > MAX_FILE {
                    format!("{} bytes, over the {MAX_FILE}-byte limit", m.len())
                } else {
                    files.push(p);
                    continue;
                };
                out.skipped.push(Skipped {
                    label: label.clone(),
                    path: p,
                    reason,
                });
            }
        }
        files.sort();
        files.truncate(limit.unwrap_or(usize::MAX));
        out.files.extend(files.into_iter().map(|path| Item {
            label: label.clone(),
            source: source_of(&l, &path),
            path,
        }));
    }
    out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Scans every file with `parallel` messages in flight. A file that cannot
/// be read is added to `skipped` instead of being scanned as empty.
pub async fn run(pipeline: &Pipeline, files: Vec<Item>, parallel: usize, skipped: &mut Vec<Skipped>) -> Vec<Sample> {
    let results: Vec<Result<Sample, Skipped>> = futures::stream::iter(files)
        .map(|Item { label, source, path }| async move {
            let raw = match tokio::fs::read(&path).await {
                Ok(raw) => raw,
                Err(e) => {
                    return Err(Skipped {
                        label,
                        path,
                        reason: format!("unreadable: {e}"),
                    });
                }
            };
            let start = Instant::now();
            let d = pipeline.scan(raw).await;
            Ok(Sample {
                label,
                source,
                path,
                verdict: d.verdict,
                score: d.score,
                tags: d.tags,
                reports: d.reports,
                elapsed: start.elapsed(),
            })
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut samples = Vec::new();
    for r in results {
        match r {
            Ok(s) => samples.push(s),
            Err(s) => skipped.push(s),
        }
    }
    samples
}

/// One JSON line per message for `simulate --dump`: label, source, file,
/// verdict, score and every finding with its detail, so a policy change can
/// be replayed on the evidence without scanning again.
pub fn dump_line(s: &Sample) -> serde_json::Value {
    let findings: Vec<serde_json::Value> = s
        .reports
        .iter()
        .flat_map(|r| r.findings.iter())
        .map(|f| serde_json::json!({"tag": f.tag, "detail": f.detail}))
        .collect();
    serde_json::json!({
        "label": s.label,
        "source": s.source,
        "path": s.path.display().to_string(),
        "verdict": s.verdict,
        "score": s.score,
        "tags": s.tags,
        "findings": findings,
    })
}

/// Files listed per reason in the report at most.
const SKIPPED_LISTED: usize = 20;

/// The report; `skipped` files are counted and listed with their reason.
pub fn report(samples: &[Sample], skipped: &[Skipped]) -> String {
    report_with(samples, skipped, &summary::summarize(samples, skipped.len()))
}

/// The report for an already built summary (the one `--json` writes).
pub fn report_with(samples: &[Sample], skipped: &[Skipped], sum: &summary::Summary) -> String {
    let mut out = String::new();
    skipped_section(&mut out, skipped);
    // "Caught" means any verdict above pass. Ham is the negative class.
    let classes: Vec<&summary::Group> = sum.groups.iter().filter(|g| g.source == "*").collect();
    let ham = classes.iter().find(|g| g.class == summary::HAM);
    let ham_caught = ham.map_or(0.0, |h| h.caught * h.n as f64);
    let _ = writeln!(out, "per class (caught = any verdict above pass)");
    let _ = writeln!(out, "{:<10} {:>10} {:>10} {:>12}", "class", "recall", "precision", "quarantine+");
    for g in classes.iter().filter(|g| g.class != summary::HAM) {
        let caught = g.caught * g.n as f64;
        let precision = (caught + ham_caught > 0.0).then(|| caught / (caught + ham_caught));
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>10} {:>12}",
            g.class,
            fmt(Some(g.caught)),
            fmt(precision),
            fmt(Some(g.quarantined))
        );
    }
    if let Some(h) = ham {
        let q = (h.quarantined * h.n as f64).round() as usize;
        let c = (h.caught * h.n as f64).round() as usize;
        let _ = writeln!(
            out,
            "ham false positives: {} flagged or junked, {q} quarantined or deleted, of {}",
            c.saturating_sub(q),
            h.n
        );
    }
    let mut tags: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for s in samples {
        for t in &s.tags {
            *tags.entry(t.as_str()).or_default().entry(s.label.as_str()).or_default() += 1;
        }
    }
    let _ = writeln!(out, "\ntag hits per label");
    for (t, per) in &tags {
        let cells: Vec<String> = per.iter().map(|(l, n)| format!("{l}={n}")).collect();
        let _ = writeln!(out, "  {t:<28} {}", cells.join(" "));
    }
    summary::text(&mut out, sum);
    ai_tier(&mut out, samples);
    let mut slow: Vec<&Sample> = samples.iter().collect();
    slow.sort_by_key(|s| std::cmp::Reverse(s.elapsed));
    let _ = writeln!(out, "\nslowest messages");
    for s in slow.iter().take(10) {
        let _ = writeln!(out, "  {:>8.1} ms  {}", s.elapsed.as_secs_f64() * 1000.0, s.path.display());
    }
    out
}

fn skipped_section(out: &mut String, skipped: &[Skipped]) {
    if skipped.is_empty() {
        return;
    }
    let _ = writeln!(out, "skipped {} file(s), not scanned and not counted below:", skipped.len());
    for s in skipped.iter().take(SKIPPED_LISTED) {
        let _ = writeln!(out, "  {:<10} {}: {}", s.label, s.path.display(), s.reason);
    }
    if skipped.len() > SKIPPED_LISTED {
        let _ = writeln!(out, "  … and {} more", skipped.len() - SKIPPED_LISTED);
    }
    let _ = writeln!(out);
}

/// `label/source/…/file` → `source` (the first folder under the label);
/// files directly under the label → `-`.
fn source_of(label_dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(label_dir).unwrap_or(file);
    let mut parts = rel.components();
    match (parts.next(), parts.next()) {
        (Some(first), Some(_)) => first.as_os_str().to_string_lossy().to_ascii_lowercase(),
        _ => "-".into(),
    }
}

/// The AI tier's own tags as classifiers, per class and per source.
fn ai_tier(out: &mut String, samples: &[Sample]) {
    if !samples.iter().any(|s| s.tags.iter().any(|t| t == crate::scan::ai::TAG_SCORES)) {
        return;
    }
    let _ = writeln!(
        out,
        "
AI tier alone (tag fired → predicted class)"
    );
    let _ = writeln!(
        out,
        "{:<8} {:<16} {:>10} {:>10} {:>8}",
        "class", "source", "precision", "recall", "n"
    );
    for (class, tag) in [("phish", crate::scan::ai::TAG_PHISH), ("spam", crate::scan::ai::TAG_SPAM)] {
        let fired = |s: &Sample| s.tags.iter().any(|t| t == tag);
        let mut sources: Vec<String> = samples.iter().filter(|s| s.label == class).map(|s| s.source.clone()).collect();
        sources.sort();
        sources.dedup();
        let all_fired = samples.iter().filter(|s| fired(s)).count();
        let true_pos = samples.iter().filter(|s| fired(s) && s.label == class).count();
        let n = samples.iter().filter(|s| s.label == class).count();
        let _ = writeln!(
            out,
            "{class:<8} {:<16} {:>10} {:>10} {n:>8}",
            "(all)",
            fmt(ratio(true_pos, all_fired)),
            fmt(ratio(true_pos, n))
        );
        for src in sources {
            let in_src: Vec<&Sample> = samples.iter().filter(|s| s.label == class && s.source == src).collect();
            let hits = in_src.iter().filter(|s| fired(s)).count();
            let _ = writeln!(
                out,
                "{class:<8} {src:<16} {:>10} {:>10} {:>8}",
                "",
                fmt(ratio(hits, in_src.len())),
                in_src.len()
            );
        }
    }
    let ham: Vec<&Sample> = samples.iter().filter(|s| s.label == "ham").collect();
    let fp = ham
        .iter()
        .filter(|s| {
            s.tags
                .iter()
                .any(|t| t == crate::scan::ai::TAG_PHISH || t == crate::scan::ai::TAG_SPAM)
        })
        .count();
    let _ = writeln!(
        out,
        "ham with an AI_PHISH or AI_SPAM tag: {fp} of {} ({})",
        ham.len(),
        fmt(ratio(fp, ham.len()))
    );
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn fmt(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.3}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(label: &str, v: Verdict) -> Sample {
        Sample {
            label: label.into(),
            source: "-".into(),
            path: PathBuf::from("x"),
            verdict: v,
            score: 0.0,
            tags: vec!["T".into()],
            reports: Vec::new(),
            elapsed: Duration::from_millis(1),
        }
    }

    #[test]
    fn report_counts() {
        let r = report(
            &[
                s("ham", Verdict::Pass),
                s("ham", Verdict::Flag),
                s("phish", Verdict::Quarantine),
                s("phish", Verdict::Pass),
            ],
            &[],
        );
        assert!(r.contains("phish"), "{r}");
        assert!(r.contains("0.500"), "{r}");
        assert!(r.contains("ham false positives: 1 flagged or junked, 0 quarantined"), "{r}");
    }

    #[test]
    fn issue_18_empty_and_oversized_files_are_reported_as_skipped() {
        // Issue 18: simulate left these out without a mention.
        let dir = tempfile::tempdir().unwrap();
        let ham = dir.path().join("ham");
        std::fs::create_dir(&ham).unwrap();
        std::fs::write(ham.join("ok.eml"), b"From: a@a.test\r\n\r\nhi").unwrap();
        std::fs::write(ham.join("empty.eml"), b"").unwrap();
        let big = std::fs::File::create(ham.join("big.eml")).unwrap();
        big.set_len(MAX_FILE + 1).unwrap(); // sparse: no 20 MB written
        let c = corpus(dir.path(), None).unwrap();
        let paths: Vec<&Path> = c.files.iter().map(|i| i.path.as_path()).collect();
        assert_eq!(paths, vec![ham.join("ok.eml")]);
        let reasons: Vec<(&str, &str)> = c
            .skipped
            .iter()
            .map(|s| (s.path.file_name().unwrap().to_str().unwrap(), s.reason.as_str()))
            .collect();
        assert_eq!(reasons[0].0, "big.eml");
        assert!(reasons[0].1.contains("over the 20971520-byte limit"), "{reasons:?}");
        assert_eq!(reasons[1], ("empty.eml", "empty file"));
        let r = report(&[s("ham", Verdict::Pass)], &c.skipped);
        assert!(r.starts_with("skipped 2 file(s)"), "{r}");
        assert!(r.contains("empty.eml: empty file"), "{r}");
    }

    #[test]
    fn source_is_the_first_folder_under_the_label() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("ham/lists-2024/sub");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(dir.path().join("phish")).unwrap();
        std::fs::write(deep.join("a.eml"), b"From: a@a.test\r\n\r\nhi").unwrap();
        std::fs::write(dir.path().join("phish/b.eml"), b"From: b@b.test\r\n\r\nhi").unwrap();
        let c = corpus(dir.path(), None).unwrap();
        let got: Vec<(&str, &str)> = c.files.iter().map(|i| (i.label.as_str(), i.source.as_str())).collect();
        assert_eq!(got, vec![("ham", "lists-2024"), ("phish", "-")]);
    }
}
