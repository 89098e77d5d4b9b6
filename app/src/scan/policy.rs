//! The verdict engine: tags → scores (from `rules/policy.toml`) → verdict,
//! with fail-closed handling of critical scanners and a reason that names
//! the top contributing tags.

use crate::domain::{Decision, ScannerReport, Verdict};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The shipped default policy.
pub const DEFAULT_POLICY: &str = include_str!("../../../rules/policy.toml");

/// A tag's weight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weight {
    /// Added to the score.
    Score(f64),
    /// Forces at least quarantine.
    Quarantine,
}

/// Policy file errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not readable.
    #[error("cannot read policy {path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not valid.
    #[error("invalid policy: {0}")]
    Invalid(String),
}

/// Parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Per-tag weights.
    pub scores: BTreeMap<String, Weight>,
    /// Flag threshold.
    pub flag: f64,
    /// Quarantine threshold.
    pub quarantine: f64,
    /// Delete threshold (needs strong evidence too).
    pub delete: f64,
    /// Tags that may justify delete.
    pub strong: BTreeSet<String>,
}

#[derive(serde::Deserialize)]
struct Raw {
    thresholds: RawThresholds,
    #[serde(default)]
    strong_evidence: RawStrong,
    scores: BTreeMap<String, toml::Value>,
}

#[derive(serde::Deserialize)]
struct RawThresholds {
    flag: f64,
    quarantine: f64,
    delete: f64,
}

#[derive(serde::Deserialize, Default)]
struct RawStrong {
    tags: Vec<String>,
}

impl Policy {
    /// The embedded default.
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Self::parse(DEFAULT_POLICY)
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses policy text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let raw: Raw = toml::from_str(text).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let t = &raw.thresholds;
        if !(t.flag <= t.quarantine && t.quarantine <= t.delete) {
            return Err(PolicyError::Invalid("thresholds must satisfy flag <= quarantine <= delete".into()));
        }
        let mut scores = BTreeMap::new();
        for (tag, v) in raw.scores {
            let w = match &v {
                toml::Value::Float(f) => Weight::Score(*f),
                toml::Value::Integer(i) => Weight::Score(*i as f64),
                toml::Value::String(s) if s == "quarantine" => Weight::Quarantine,
                other => return Err(PolicyError::Invalid(format!("{tag} = {other}: use a number or \"quarantine\""))),
            };
            scores.insert(tag, w);
        }
        for s in &raw.strong_evidence.tags {
            if !scores.contains_key(s) {
                return Err(PolicyError::Invalid(format!("strong_evidence tag {s} has no score")));
            }
        }
        Ok(Policy {
            scores,
            flag: t.flag,
            quarantine: t.quarantine,
            delete: t.delete,
            strong: raw.strong_evidence.tags.into_iter().collect(),
        })
    }

    /// Turns scanner reports into a decision.
    pub fn decide(&self, reports: Vec<ScannerReport>) -> Decision {
        let mut tags: Vec<String> = Vec::new();
        for f in reports.iter().flat_map(|r| &r.findings) {
            if !tags.contains(&f.tag) {
                tags.push(f.tag.clone());
            }
        }
        let mut contrib: Vec<(&str, f64)> = Vec::new();
        let mut forced = Vec::new();
        for t in &tags {
            match self.scores.get(t) {
                Some(Weight::Score(s)) => contrib.push((t, *s)),
                Some(Weight::Quarantine) => forced.push(t.as_str()),
                // Unknown tags are a bug caught by the one-to-one test; score 0 here.
                None => tracing::warn!(tag = %t, "tag has no score in the policy"),
            }
        }
        // f64 sums start at -0.0; add 0.0 so a clean message prints "0.0".
        let score: f64 = contrib.iter().map(|(_, s)| s).sum::<f64>() + 0.0;
        contrib.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = contrib
            .iter()
            .filter(|(_, s)| *s != 0.0)
            .take(5)
            .map(|(t, s)| format!("{t} {s:+}"))
            .collect();
        let failed: Vec<String> = reports
            .iter()
            .filter(|r| r.critical && r.error.is_some())
            .map(|r| format!("{} unavailable ({})", r.scanner, r.error.as_deref().unwrap_or("")))
            .collect();
        let strong = tags.iter().any(|t| self.strong.contains(t));
        let allowed = tags.iter().any(|t| t == super::scanners::lists::TAG_SENDER_ALLOWED);
        let evidence = if top.is_empty() {
            "no scoring tags".to_string()
        } else {
            top.join(", ")
        };
        let (verdict, why) = if strong && score >= self.delete {
            (Verdict::Delete, format!("strong evidence, score {score:.1} >= {}", self.delete))
        } else if !forced.is_empty() {
            (Verdict::Quarantine, format!("{} forces quarantine", forced.join(", ")))
        } else if !failed.is_empty() {
            (Verdict::Quarantine, format!("fail-closed: {}", failed.join("; ")))
        } else if score >= self.quarantine {
            (Verdict::Quarantine, format!("score {score:.1} >= {}", self.quarantine))
        } else if allowed {
            (Verdict::Pass, "allowlisted sender with aligned authentication".to_string())
        } else if score >= self.flag {
            (Verdict::Flag, format!("score {score:.1} >= {}", self.flag))
        } else {
            (Verdict::Pass, format!("score {score:.1} below {}", self.flag))
        };
        Decision {
            verdict,
            reason: format!("{why}; {evidence}"),
            tags,
            score,
            reports,
            observables: Vec::new(),
        }
    }

    /// The weight of a tag, for explanations.
    pub fn weight(&self, tag: &str) -> Option<Weight> {
        self.scores.get(tag).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Finding;

    fn report(scanner: &str, critical: bool, tags: &[&str], error: Option<&str>) -> ScannerReport {
        ScannerReport {
            scanner: scanner.into(),
            critical,
            findings: tags
                .iter()
                .map(|t| Finding {
                    tag: t.to_string(),
                    detail: None,
                    indicator: None,
                })
                .collect(),
            elapsed_ms: 1,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn verdict_table() {
        let p = Policy::default_policy().unwrap();
        let cases: &[(&[ScannerReport], Verdict)] = &[
            (&[report("x", false, &[], None)], Verdict::Pass),
            (&[report("x", false, &["SPOOF_DISPLAY_NAME_BRAND"], None)], Verdict::Flag),
            (&[report("x", false, &["RSPAMD_REJECT"], None)], Verdict::Quarantine),
            (&[report("x", false, &["AV_VIRUS"], None)], Verdict::Quarantine),
            (
                &[report("x", false, &["AV_VIRUS", "ATT_EXECUTABLE", "ATT_DOUBLE_EXT"], None)],
                Verdict::Delete,
            ),
            (
                &[report(
                    "x",
                    false,
                    &["ATT_EXECUTABLE", "ATT_LNK", "HTML_SMUGGLING", "ATT_DOUBLE_EXT"],
                    None,
                )],
                Verdict::Quarantine,
            ),
            (&[report("x", false, &["LIST_SENDER_BLOCKED"], None)], Verdict::Quarantine),
            (&[report("rspamd", true, &[], Some("timeout"))], Verdict::Quarantine),
            (&[report("rspamd", false, &[], Some("timeout"))], Verdict::Pass),
            (
                &[report("x", false, &["LIST_SENDER_ALLOWED", "SPOOF_DISPLAY_NAME_BRAND"], None)],
                Verdict::Pass,
            ),
            (
                &[report("x", false, &["LIST_SENDER_ALLOWED", "AV_VIRUS"], None)],
                Verdict::Quarantine,
            ),
            // A dead scanner never turns a clean message into a delete.
            (
                &[
                    report("clamav", true, &[], Some("down")),
                    report("x", false, &["ATT_EXECUTABLE", "ATT_LNK", "HTML_SMUGGLING"], None),
                ],
                Verdict::Quarantine,
            ),
        ];
        for (reports, want) in cases {
            let d = p.decide(reports.to_vec());
            assert_eq!(d.verdict, *want, "{reports:?} -> {}", d.reason);
        }
    }

    #[test]
    fn reason_names_top_tags_and_failures() {
        let p = Policy::default_policy().unwrap();
        let d = p.decide(vec![
            report("rspamd", true, &[], Some("connection refused")),
            report("a", false, &["ATT_DOUBLE_EXT"], None),
        ]);
        assert!(
            d.reason.contains("fail-closed") && d.reason.contains("rspamd") && d.reason.contains("ATT_DOUBLE_EXT"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn bad_policies_are_rejected() {
        assert!(Policy::parse("[thresholds]\nflag=10.0\nquarantine=5.0\ndelete=20.0\n[scores]\n").is_err());
        assert!(Policy::parse("[thresholds]\nflag=1.0\nquarantine=5.0\ndelete=20.0\n[scores]\nX = \"maybe\"\n").is_err());
        assert!(Policy::parse("[thresholds]\nflag=1.0\nquarantine=5.0\ndelete=20.0\n[strong_evidence]\ntags=[\"Y\"]\n[scores]\n").is_err());
    }
}
