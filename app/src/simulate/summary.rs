//! The machine-readable side of `postern simulate`: counts per class ×
//! source, the score-cut sweep and the per-message cost, written with
//! `--json FILE` and read by `make quality` (scripts/quality.py).
//!
//! Verdicts are keyed by [`Verdict::as_str`] and ranked by the enum's own
//! order, so a verdict added to the enum (between flag and quarantine, say)
//! is counted without a change here: "caught" is anything above pass,
//! "quarantined" is quarantine or worse.

use super::Sample;
use crate::domain::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Score cuts of the sweep: around the policy's flag (5) and quarantine (10)
/// thresholds and up to the delete threshold (40).
pub const CUTS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0];

/// The ham label: its rates are false positives.
pub const HAM: &str = "ham";

/// One class × source cell (source `*` is the whole class).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    /// Label folder (ham, spam, phish, malware).
    pub class: String,
    /// First folder under the label, `-` for files directly in it.
    pub source: String,
    /// Messages.
    pub n: usize,
    /// Messages per verdict name.
    pub verdicts: BTreeMap<String, usize>,
    /// Share with a verdict above pass (flag or worse).
    pub caught: f64,
    /// Share with quarantine or worse.
    pub quarantined: f64,
    /// Messages carrying each tag.
    pub tags: BTreeMap<String, usize>,
}

/// One score cut for one class: how much of the class, and how much ham,
/// scores at or above it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cut {
    /// Score cut.
    pub cut: f64,
    /// Share of the class at or above the cut.
    pub caught: f64,
    /// Share of all ham at or above the cut.
    pub ham_fp: f64,
    /// The ham source with the highest share at or above the cut.
    pub worst_ham_source: String,
    /// That source's share.
    pub worst_ham_fp: f64,
}

/// Wall time per message (with `--parallel 1` and no network scanners this
/// is the local pipeline's cost on one core).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Messages timed.
    pub n: usize,
    /// Mean milliseconds.
    pub mean_ms: f64,
    /// Median milliseconds.
    pub p50_ms: f64,
    /// 95th percentile milliseconds.
    pub p95_ms: f64,
    /// Slowest message in milliseconds.
    pub max_ms: f64,
}

/// Everything `--json` writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Messages scanned.
    pub messages: usize,
    /// Files left out (listed in the text report).
    pub skipped: usize,
    /// Per class (source `*`) and per class × source.
    pub groups: Vec<Group>,
    /// Per non-ham class: the sweep over [`CUTS`].
    pub sweep: BTreeMap<String, Vec<Cut>>,
    /// Time per message.
    pub cost: Cost,
}

/// Builds the summary from scanned samples.
pub fn summarize(samples: &[Sample], skipped: usize) -> Summary {
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for s in samples {
        for src in ["*", s.source.as_str()] {
            let g = groups.entry((s.label.clone(), src.to_string())).or_insert_with(|| Group {
                class: s.label.clone(),
                source: src.to_string(),
                ..Group::default()
            });
            g.n += 1;
            *g.verdicts.entry(s.verdict.as_str().to_string()).or_default() += 1;
            if s.verdict > Verdict::Pass {
                g.caught += 1.0;
            }
            if s.verdict >= Verdict::Quarantine {
                g.quarantined += 1.0;
            }
            for t in &s.tags {
                *g.tags.entry(t.clone()).or_default() += 1;
            }
        }
    }
    let groups: Vec<Group> = groups
        .into_values()
        .map(|mut g| {
            g.caught /= g.n as f64;
            g.quarantined /= g.n as f64;
            g
        })
        .collect();
    Summary {
        messages: samples.len(),
        skipped,
        groups,
        sweep: sweep(samples),
        cost: cost(samples),
    }
}

fn share(scores: &[f64], cut: f64) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores.iter().filter(|s| **s >= cut).count() as f64 / scores.len() as f64
}

fn sweep(samples: &[Sample]) -> BTreeMap<String, Vec<Cut>> {
    let mut by_class: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut ham_by_source: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in samples {
        by_class.entry(s.label.as_str()).or_default().push(s.score);
        if s.label == HAM {
            ham_by_source.entry(s.source.as_str()).or_default().push(s.score);
        }
    }
    let ham = by_class.get(HAM).cloned().unwrap_or_default();
    by_class
        .iter()
        .filter(|(c, _)| **c != HAM)
        .map(|(class, scores)| {
            let rows = CUTS
                .iter()
                .map(|&cut| {
                    let (worst_ham_source, worst_ham_fp) = ham_by_source
                        .iter()
                        .map(|(src, v)| (src.to_string(), share(v, cut)))
                        .fold(("-".to_string(), 0.0), |a, b| if b.1 > a.1 { b } else { a });
                    Cut {
                        cut,
                        caught: share(scores, cut),
                        ham_fp: share(&ham, cut),
                        worst_ham_source,
                        worst_ham_fp,
                    }
                })
                .collect();
            (class.to_string(), rows)
        })
        .collect()
}

fn cost(samples: &[Sample]) -> Cost {
    let mut ms: Vec<f64> = samples.iter().map(|s| s.elapsed.as_secs_f64() * 1000.0).collect();
    if ms.is_empty() {
        return Cost::default();
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Cost {
        n: ms.len(),
        mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
        p50_ms: at(0.5),
        p95_ms: at(0.95),
        max_ms: at(1.0),
    }
}

/// The per-source table and the sweep, as text for the report.
pub fn text(out: &mut String, sum: &Summary) {
    let mut names: Vec<&str> = Vec::new();
    for g in &sum.groups {
        for v in g.verdicts.keys() {
            if !names.contains(&v.as_str()) {
                names.push(v);
            }
        }
    }
    // Stable column order: the enum's own, whatever verdicts exist.
    names.sort_by_key(|n| Verdict::parse(n));
    let _ = writeln!(out, "\nper class × source (caught = above pass; for ham these are false positives)");
    let _ = write!(out, "{:<8} {:<22} {:>6}", "class", "source", "n");
    for n in &names {
        let _ = write!(out, " {n:>10}");
    }
    let _ = writeln!(out, " {:>8} {:>12}", "caught", "quarantine+");
    for g in &sum.groups {
        let _ = write!(out, "{:<8} {:<22} {:>6}", g.class, g.source, g.n);
        for n in &names {
            let _ = write!(out, " {:>10}", g.verdicts.get(*n).copied().unwrap_or(0));
        }
        let _ = writeln!(out, " {:>8.3} {:>12.3}", g.caught, g.quarantined);
    }
    for (class, rows) in &sum.sweep {
        let _ = writeln!(out, "\nscore sweep for {class} (share scoring at or above the cut)");
        let _ = writeln!(
            out,
            "{:>6} {:>8} {:>8} {:>12}  worst ham source",
            "cut", "caught", "ham fp", "worst ham fp"
        );
        for r in rows {
            let _ = writeln!(
                out,
                "{:>6.1} {:>8.3} {:>8.4} {:>12.4}  {}",
                r.cut, r.caught, r.ham_fp, r.worst_ham_fp, r.worst_ham_source
            );
        }
    }
    let c = &sum.cost;
    let _ = writeln!(
        out,
        "\ntime per message: mean {:.2} ms, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms ({} messages)",
        c.mean_ms, c.p50_ms, c.p95_ms, c.max_ms, c.n
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn s(label: &str, source: &str, v: Verdict, score: f64, ms: u64) -> Sample {
        Sample {
            label: label.into(),
            source: source.into(),
            path: PathBuf::from("x"),
            verdict: v,
            score,
            tags: vec!["T".into()],
            reports: Vec::new(),
            elapsed: Duration::from_millis(ms),
        }
    }

    fn group<'a>(sum: &'a Summary, class: &str, source: &str) -> &'a Group {
        sum.groups.iter().find(|g| g.class == class && g.source == source).unwrap()
    }

    #[test]
    fn groups_per_class_and_source_with_caught_and_quarantined_rates() {
        let sum = summarize(
            &[
                s("ham", "lists", Verdict::Pass, 0.0, 1),
                s("ham", "lists", Verdict::Flag, 6.0, 1),
                s("ham", "news", Verdict::Pass, 1.0, 1),
                s("phish", "pot", Verdict::Quarantine, 12.0, 1),
                s("phish", "pot", Verdict::Delete, 50.0, 1),
                s("phish", "nazario", Verdict::Pass, 0.0, 1),
                s("phish", "nazario", Verdict::Flag, 5.0, 1),
            ],
            3,
        );
        assert_eq!((sum.messages, sum.skipped), (7, 3));
        let lists = group(&sum, "ham", "lists");
        assert_eq!(lists.n, 2);
        assert_eq!(lists.caught, 0.5);
        assert_eq!(lists.quarantined, 0.0);
        assert_eq!(lists.verdicts.get("flag"), Some(&1));
        assert_eq!(lists.tags.get("T"), Some(&2));
        let pot = group(&sum, "phish", "pot");
        assert_eq!((pot.caught, pot.quarantined), (1.0, 1.0));
        let all = group(&sum, "phish", "*");
        assert_eq!(all.n, 4);
        assert_eq!((all.caught, all.quarantined), (0.75, 0.5));
        assert_eq!(sum.groups.len(), 3 + 3, "ham: *, lists, news; phish: *, pot, nazario");
    }

    #[test]
    fn sweep_gives_class_recall_and_ham_cost_at_each_cut() {
        let sum = summarize(
            &[
                s("ham", "lists", Verdict::Pass, 0.0, 1),
                s("ham", "lists", Verdict::Pass, 0.0, 1),
                s("ham", "news", Verdict::Flag, 6.0, 1),
                s("ham", "news", Verdict::Pass, 2.0, 1),
                s("spam", "sa", Verdict::Flag, 5.0, 1),
                s("spam", "sa", Verdict::Pass, 1.0, 1),
            ],
            0,
        );
        assert!(!sum.sweep.contains_key("ham"));
        let rows = &sum.sweep["spam"];
        assert_eq!(rows.len(), CUTS.len());
        let at = |c: f64| rows.iter().find(|r| r.cut == c).unwrap();
        assert_eq!((at(1.0).caught, at(1.0).ham_fp), (1.0, 0.5));
        assert_eq!((at(5.0).caught, at(5.0).ham_fp), (0.5, 0.25));
        assert_eq!((at(5.0).worst_ham_source.as_str(), at(5.0).worst_ham_fp), ("news", 0.5));
        assert_eq!((at(7.0).caught, at(7.0).ham_fp), (0.0, 0.0));
        assert_eq!(at(7.0).worst_ham_source, "-");
    }

    #[test]
    fn cost_percentiles_and_empty_input() {
        let samples: Vec<Sample> = (1..=100).map(|ms| s("ham", "a", Verdict::Pass, 0.0, ms)).collect();
        let c = summarize(&samples, 0).cost;
        assert_eq!(c.n, 100);
        assert_eq!(c.max_ms, 100.0);
        assert!((c.mean_ms - 50.5).abs() < 1e-9, "{c:?}");
        assert!((50.0..=51.0).contains(&c.p50_ms), "{c:?}");
        assert!((95.0..=96.0).contains(&c.p95_ms), "{c:?}");
        let empty = summarize(&[], 0);
        assert_eq!(empty.cost, Cost::default());
        assert!(empty.groups.is_empty() && empty.sweep.is_empty());
    }

    #[test]
    fn json_and_text_name_every_verdict_that_occurs() {
        let sum = summarize(
            &[
                s("ham", "lists", Verdict::Pass, 0.0, 1),
                s("spam", "sa", Verdict::Quarantine, 11.0, 1),
            ],
            0,
        );
        let json = serde_json::to_value(&sum).unwrap();
        assert_eq!(json["groups"][0]["verdicts"]["pass"], 1);
        assert_eq!(json["sweep"]["spam"][0]["cut"], 1.0);
        let mut out = String::new();
        text(&mut out, &sum);
        let header = out.lines().find(|l| l.starts_with("class")).unwrap();
        assert!(header.contains("pass") && header.contains("quarantine"), "{out}");
        assert!(!header.contains("delete"), "only verdicts that occur: {out}");
        assert!(out.contains("score sweep for spam"), "{out}");
    }
}
