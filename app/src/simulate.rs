//! `postern simulate DIR`: runs the pipeline over a labelled corpus
//! (subfolders named `ham`, `spam`, `phish`, `malware`) and reports the
//! confusion matrix, precision and recall per class, tag hit counts and the
//! slowest messages. Used to tune `rules/policy.toml` for few false positives.

use crate::domain::Verdict;
use crate::scan::Pipeline;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Largest file read as one message.
const MAX_FILE: u64 = 20 * 1024 * 1024;
const VERDICTS: [Verdict; 4] = [Verdict::Pass, Verdict::Flag, Verdict::Quarantine, Verdict::Delete];

/// One scanned corpus file.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Folder label.
    pub label: String,
    /// File.
    pub path: PathBuf,
    /// Verdict.
    pub verdict: Verdict,
    /// Tags.
    pub tags: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Files per label (`label/**/file`), sorted, at most `limit` per label.
pub fn corpus(dir: &Path, limit: Option<usize>) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut labels: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    labels.sort();
    for l in labels {
        let label = l.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let mut files = Vec::new();
        let mut stack = vec![l];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)?.filter_map(|e| e.ok()) {
                let p = e.path();
                let Ok(m) = e.metadata() else { continue };
                if m.is_dir() {
                    stack.push(p);
                } else if m.len() > 0 && m.len() <= MAX_FILE && p.extension().is_none_or(|x| x != "mbox") {
                    files.push(p);
                }
            }
        }
        files.sort();
        files.truncate(limit.unwrap_or(usize::MAX));
        out.extend(files.into_iter().map(|f| (label.clone(), f)));
    }
    Ok(out)
}

/// Scans every file with `parallel` messages in flight.
pub async fn run(pipeline: &Pipeline, files: Vec<(String, PathBuf)>, parallel: usize) -> Vec<Sample> {
    futures::stream::iter(files)
        .map(|(label, path)| async move {
            let raw = tokio::fs::read(&path).await.unwrap_or_default();
            let start = Instant::now();
            let d = pipeline.scan(raw).await;
            Sample {
                label,
                path,
                verdict: d.verdict,
                tags: d.tags,
                elapsed: start.elapsed(),
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await
}

/// The report.
pub fn report(samples: &[Sample]) -> String {
    let mut out = String::new();
    let mut by: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for s in samples {
        let row = by.entry(s.label.as_str()).or_default();
        row[VERDICTS.iter().position(|v| *v == s.verdict).unwrap_or(0)] += 1;
    }
    let _ = writeln!(out, "confusion matrix (rows: label, columns: verdict)");
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>8} {:>11} {:>8} {:>8}",
        "label", "pass", "flag", "quarantine", "delete", "total"
    );
    for (label, row) in &by {
        let _ = writeln!(
            out,
            "{label:<10} {:>8} {:>8} {:>11} {:>8} {:>8}",
            row[0],
            row[1],
            row[2],
            row[3],
            row.iter().sum::<usize>()
        );
    }
    // "Caught" means any action (not pass). Ham is the negative class.
    let caught = |r: &[usize; 4]| r[1] + r[2] + r[3];
    let ham = by.get("ham").copied().unwrap_or_default();
    let _ = writeln!(out, "\nper class (caught = flag, quarantine or delete)");
    let _ = writeln!(out, "{:<10} {:>10} {:>10} {:>12}", "class", "recall", "precision", "quarantine+");
    for (label, row) in by.iter().filter(|(l, _)| **l != "ham") {
        let total: usize = row.iter().sum();
        let recall = ratio(caught(row), total);
        let precision = ratio(caught(row), caught(row) + caught(&ham));
        let _ = writeln!(
            out,
            "{label:<10} {:>10} {:>10} {:>12}",
            fmt(recall),
            fmt(precision),
            fmt(ratio(row[2] + row[3], total))
        );
    }
    let ham_total: usize = ham.iter().sum();
    if ham_total > 0 {
        let _ = writeln!(
            out,
            "ham false positives: {} flagged, {} quarantined or deleted, of {ham_total}",
            ham[1],
            ham[2] + ham[3]
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
    per_source(&mut out, samples);
    ai_tier(&mut out, samples);
    let mut slow: Vec<&Sample> = samples.iter().collect();
    slow.sort_by_key(|s| std::cmp::Reverse(s.elapsed));
    let _ = writeln!(out, "\nslowest messages");
    for s in slow.iter().take(10) {
        let _ = writeln!(out, "  {:>8.1} ms  {}", s.elapsed.as_secs_f64() * 1000.0, s.path.display());
    }
    out
}

/// `label/source/file` → `source`; files directly under the label → `-`.
fn source(s: &Sample) -> String {
    let parent = s
        .path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_ascii_lowercase());
    match parent {
        Some(p) if p != s.label => p,
        _ => "-".into(),
    }
}

/// Mixed corpora hide where a filter fails: one line per (label, source).
fn per_source(out: &mut String, samples: &[Sample]) {
    let mut by: BTreeMap<(String, String), (usize, usize, usize)> = BTreeMap::new();
    for s in samples {
        let e = by.entry((s.label.clone(), source(s))).or_default();
        e.0 += 1;
        if s.verdict != Verdict::Pass {
            e.1 += 1;
        }
        if matches!(s.verdict, Verdict::Quarantine | Verdict::Delete) {
            e.2 += 1;
        }
    }
    let _ = writeln!(
        out,
        "
per source (for ham, caught means a false positive)"
    );
    let _ = writeln!(
        out,
        "{:<10} {:<16} {:>7} {:>8} {:>12}",
        "label", "source", "total", "caught", "quarantine+"
    );
    for ((label, src), (n, caught, q)) in &by {
        let _ = writeln!(
            out,
            "{label:<10} {src:<16} {n:>7} {:>8} {:>12}",
            fmt(ratio(*caught, *n)),
            fmt(ratio(*q, *n))
        );
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
        let mut sources: Vec<String> = samples.iter().filter(|s| s.label == class).map(source).collect();
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
            let in_src: Vec<&Sample> = samples.iter().filter(|s| s.label == class && source(s) == src).collect();
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
            path: PathBuf::from("x"),
            verdict: v,
            tags: vec!["T".into()],
            elapsed: Duration::from_millis(1),
        }
    }

    #[test]
    fn report_counts() {
        let r = report(&[
            s("ham", Verdict::Pass),
            s("ham", Verdict::Flag),
            s("phish", Verdict::Quarantine),
            s("phish", Verdict::Pass),
        ]);
        assert!(r.contains("phish"), "{r}");
        assert!(r.contains("0.500"), "{r}");
        assert!(r.contains("ham false positives: 1 flagged, 0 quarantined"), "{r}");
    }
}
