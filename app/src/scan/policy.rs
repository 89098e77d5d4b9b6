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
    /// Its tags do not match what the scanners emit.
    #[error("policy {path} does not match the scanners' tags: {}", .problems.join("; "))]
    Tags {
        /// File.
        path: String,
        /// What is wrong.
        problems: Vec<String>,
    },
}

/// Parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Per-tag weights.
    pub scores: BTreeMap<String, Weight>,
    /// Flag threshold.
    pub flag: f64,
    /// Junk threshold: spam evidence at or above it moves mail to Junk.
    pub junk: f64,
    /// Quarantine threshold.
    pub quarantine: f64,
    /// Delete threshold (needs strong evidence too).
    pub delete: f64,
    /// Tags that may justify delete.
    pub strong: BTreeSet<String>,
    /// Tags that say "unwanted bulk mail" rather than "a threat": mail
    /// whose score rests on them goes to Junk, not quarantine.
    pub spam: BTreeSet<String>,
    /// What a block-listed sender gets (`policy.block_verdict` in
    /// config.yaml); `None`: the policy table's weight for the tag.
    pub block_verdict: Option<Verdict>,
    /// Groups of tags that quarantine when all of them fired, though none
    /// does alone (`[[together]]`): evidence that is weak apart and strong
    /// in one message, such as a phishing text leading only to its
    /// sender's own domain and that domain being days old.
    pub together: Vec<Vec<String>>,
}

#[derive(serde::Deserialize)]
struct Raw {
    thresholds: RawThresholds,
    #[serde(default)]
    strong_evidence: RawStrong,
    #[serde(default)]
    spam_evidence: RawStrong,
    scores: BTreeMap<String, toml::Value>,
    #[serde(default)]
    together: Vec<RawStrong>,
}

#[derive(serde::Deserialize)]
struct RawThresholds {
    flag: f64,
    /// Absent in policies older than the junk verdict: the flag threshold.
    junk: Option<f64>,
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

    /// Reads an operator's policy file and checks it against the scanner
    /// table: a tag no scanner emits (a typo) or an emitted tag without a
    /// score would otherwise silently score 0.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let p = Self::parse(&text)?;
        let problems = p.tag_problems();
        if !problems.is_empty() {
            return Err(PolicyError::Tags {
                path: path.display().to_string(),
                problems,
            });
        }
        Ok(p)
    }

    /// What is wrong with the [scores] table against the scanner table
    /// ([`super::registry::SCANNERS`]); empty when they are one-to-one.
    pub fn tag_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let unscored = super::registry::unscored(|t| self.scores.contains_key(t));
        if !unscored.is_empty() {
            out.push(format!(
                "no score for {} (every tag a scanner can emit needs one; 0.0 ignores it)",
                unscored.join(", ")
            ));
        }
        let unknown = super::registry::unknown(self.scores.keys().map(String::as_str));
        if !unknown.is_empty() {
            out.push(format!("no scanner emits {} (a typo, or a check that is gone)", unknown.join(", ")));
        }
        out
    }

    /// Parses policy text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let raw: Raw = toml::from_str(text).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let t = &raw.thresholds;
        let junk = t.junk.unwrap_or(t.flag);
        if !(t.flag <= junk && junk <= t.quarantine && t.quarantine <= t.delete) {
            return Err(PolicyError::Invalid(
                "thresholds must satisfy flag <= junk <= quarantine <= delete".into(),
            ));
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
        for (list, tags) in [
            ("strong_evidence", &raw.strong_evidence.tags),
            ("spam_evidence", &raw.spam_evidence.tags),
        ] {
            for s in tags {
                if !scores.contains_key(s) {
                    return Err(PolicyError::Invalid(format!("{list} tag {s} has no score")));
                }
            }
        }
        for group in &raw.together {
            if group.tags.len() < 2 {
                return Err(PolicyError::Invalid(format!(
                    "[[together]] {:?}: name at least two tags (one tag alone is its score)",
                    group.tags
                )));
            }
            if let Some(s) = group.tags.iter().find(|s| !scores.contains_key(*s)) {
                return Err(PolicyError::Invalid(format!("[[together]] tag {s} has no score")));
            }
        }
        Ok(Policy {
            scores,
            flag: t.flag,
            junk,
            quarantine: t.quarantine,
            delete: t.delete,
            strong: raw.strong_evidence.tags.into_iter().collect(),
            spam: raw.spam_evidence.tags.into_iter().collect(),
            block_verdict: None,
            together: raw.together.into_iter().map(|g| g.tags).collect(),
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
        let blocked = tags.iter().any(|t| t == super::scanners::lists::TAG_SENDER_BLOCKED);
        let mut contrib: Vec<(&str, f64)> = Vec::new();
        let mut forced: Vec<String> = Vec::new();
        for t in &tags {
            // policy.block_verdict replaces the block tag's weight (below).
            if self.block_verdict.is_some() && t == super::scanners::lists::TAG_SENDER_BLOCKED {
                continue;
            }
            match self.scores.get(t) {
                Some(Weight::Score(s)) => contrib.push((t, *s)),
                Some(Weight::Quarantine) => forced.push(t.clone()),
                // Unknown tags are a bug caught by the one-to-one test; score 0 here.
                None => tracing::warn!(tag = %t, "tag has no score in the policy"),
            }
        }
        for group in &self.together {
            if group.iter().all(|g| tags.contains(g)) {
                forced.push(group.join("+"));
            }
        }
        // f64 sums start at -0.0; add 0.0 so a clean message prints "0.0".
        let score: f64 = contrib.iter().map(|(_, s)| s).sum::<f64>() + 0.0;
        // Spam goes to Junk only when the rest of the evidence would not
        // even flag on its own: any phishing or malware sign worth a flag
        // keeps the message on the quarantine path.
        let spam_fired = tags.iter().any(|t| self.spam.contains(t));
        let other: f64 = contrib.iter().filter(|(t, _)| !self.spam.contains(*t)).map(|(_, s)| s).sum();
        let spam_only = spam_fired && other < self.flag;
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
        } else if score >= self.quarantine && spam_only {
            (
                Verdict::Junk,
                format!("spam: score {score:.1} >= {}, no threat evidence", self.junk),
            )
        } else if score >= self.quarantine {
            (Verdict::Quarantine, format!("score {score:.1} >= {}", self.quarantine))
        } else if allowed {
            (Verdict::Pass, "allowlisted sender with aligned authentication".to_string())
        } else if score >= self.junk && spam_only {
            (Verdict::Junk, format!("spam: score {score:.1} >= {}", self.junk))
        } else if score >= self.flag {
            (Verdict::Flag, format!("score {score:.1} >= {}", self.flag))
        } else {
            (Verdict::Pass, format!("score {score:.1} below {}", self.flag))
        };
        let (verdict, why) = match self.block_verdict {
            Some(b) if blocked && b > verdict => (b, format!("sender on the block list (policy.block_verdict: {b})")),
            _ => (verdict, why),
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
            (&[report("x", false, &["RSPAMD_REJECT"], None)], Verdict::Junk),
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

    fn tags(p: &Policy, tags: &[&str]) -> Decision {
        p.decide(vec![report("x", false, tags, None)])
    }

    #[test]
    fn spam_goes_to_junk_and_threats_still_quarantine() {
        let p = Policy::default_policy().unwrap();
        for spam in [
            &["RSPAMD_SPAM", "AI_SPAM_LIKELY"][..],
            &["AI_SPAM"],
            &["AI_UNWANTED"],
            &["RSPAMD_REJECT"],
            &["RSPAMD_REJECT", "AI_SPAM"],
            // Weak other evidence (below the flag threshold) rides along.
            &["RSPAMD_SPAM", "DOMAIN_VERY_NEW"],
        ] {
            let d = tags(&p, spam);
            assert_eq!(d.verdict, Verdict::Junk, "{spam:?}: {}", d.reason);
            assert!(d.reason.starts_with("spam"), "{}", d.reason);
        }
        for threat in [
            &["RSPAMD_REJECT", "AI_PHISH"][..],
            &["RSPAMD_SPAM", "AV_VIRUS"],
            &["AI_SPAM", "SPOOF_DISPLAY_NAME_BRAND"],
            &["RSPAMD_REJECT", "URL_LOOKALIKE_DOMAIN"],
            &["RSPAMD_SPAM", "INTEL_URL"],
            &["RSPAMD_SPAM", "HTML_SMUGGLING"],
            // The model is sure it is unwanted and leans phishing.
            &["AI_UNWANTED_PHISH"],
        ] {
            let d = tags(&p, threat);
            assert_eq!(d.verdict, Verdict::Quarantine, "{threat:?}: {}", d.reason);
        }
        // Offline Rspamd's "add header" alone marks nothing: structure
        // (broken bounce headers, odd encodings) carries ham over it.
        assert_eq!(tags(&p, &["RSPAMD_SPAM"]).verdict, Verdict::Pass);
        // Phishing-style evidence below quarantine flags; it is not spam.
        assert_eq!(tags(&p, &["SPOOF_DISPLAY_NAME_BRAND", "RSPAMD_SUSPICIOUS"]).verdict, Verdict::Flag);
        // Strong malware evidence still deletes, spam tags or not.
        assert_eq!(
            tags(&p, &["RSPAMD_SPAM", "AV_VIRUS", "ATT_EXECUTABLE", "ATT_DOUBLE_EXT"]).verdict,
            Verdict::Delete
        );
        // An allowlisted, authenticated sender is not junked on a spam score.
        assert_eq!(tags(&p, &["LIST_SENDER_ALLOWED", "RSPAMD_SPAM"]).verdict, Verdict::Pass);
        // A critical scanner's failure quarantines even with spam evidence.
        let d = p.decide(vec![
            report("clamav", true, &[], Some("down")),
            report("rspamd", false, &["RSPAMD_SPAM"], None),
        ]);
        assert_eq!(d.verdict, Verdict::Quarantine, "{}", d.reason);
    }

    #[test]
    fn a_policy_without_spam_evidence_never_junks() {
        let p = Policy::parse("[thresholds]\nflag=5.0\nquarantine=10.0\ndelete=40.0\n[scores]\nRSPAMD_SPAM = 6.0\nRSPAMD_REJECT = 12.0\n")
            .unwrap();
        assert_eq!(p.junk, 5.0, "junk defaults to the flag threshold");
        assert_eq!(tags(&p, &["RSPAMD_SPAM"]).verdict, Verdict::Flag);
        assert_eq!(tags(&p, &["RSPAMD_REJECT"]).verdict, Verdict::Quarantine);
    }

    #[test]
    fn tags_that_quarantine_together_do_so_only_together() {
        let p = Policy::default_policy().unwrap();
        assert_eq!(tags(&p, &["AI_PHISH_OWN_LINKS"]).verdict, Verdict::Flag, "alone: a warning");
        assert_eq!(tags(&p, &["DOMAIN_VERY_NEW"]).verdict, Verdict::Pass);
        for new in ["DOMAIN_VERY_NEW", "DOMAIN_NEWLY_REGISTERED"] {
            let d = tags(&p, &["AI_PHISH_OWN_LINKS", new]);
            assert_eq!(d.verdict, Verdict::Quarantine, "{}", d.reason);
            assert!(
                d.reason.contains(&format!("AI_PHISH_OWN_LINKS+{new} forces quarantine")),
                "{}",
                d.reason
            );
        }
        let base = "[thresholds]\nflag=5.0\nquarantine=10.0\ndelete=40.0\n[scores]\nA = 1.0\nB = 1.0\n";
        let one = format!("{base}[[together]]\ntags = [\"A\"]\n");
        assert!(Policy::parse(&one).unwrap_err().to_string().contains("at least two tags"));
        let unscored = format!("{base}[[together]]\ntags = [\"A\", \"C\"]\n");
        assert!(Policy::parse(&unscored).unwrap_err().to_string().contains("tag C has no score"));
        let ok = Policy::parse(&format!("{base}[[together]]\ntags = [\"A\", \"B\"]\n")).unwrap();
        assert_eq!(tags(&ok, &["A"]).verdict, Verdict::Pass);
        assert_eq!(tags(&ok, &["A", "B"]).verdict, Verdict::Quarantine);
    }

    #[test]
    fn block_verdict_replaces_the_block_tags_weight() {
        let mut p = Policy::default_policy().unwrap();
        let blocked = &["LIST_SENDER_BLOCKED"][..];
        assert_eq!(tags(&p, blocked).verdict, Verdict::Quarantine, "policy table: \"quarantine\"");
        for v in [Verdict::Flag, Verdict::Junk, Verdict::Quarantine, Verdict::Delete] {
            p.block_verdict = Some(v);
            let d = tags(&p, blocked);
            assert_eq!(d.verdict, v, "{}", d.reason);
            assert!(d.reason.contains("block list"), "{}", d.reason);
        }
        // It is a floor: stronger evidence still wins.
        p.block_verdict = Some(Verdict::Flag);
        assert_eq!(tags(&p, &["LIST_SENDER_BLOCKED", "AV_VIRUS"]).verdict, Verdict::Quarantine);
        // Senders not on the list are unaffected.
        assert_eq!(tags(&p, &[]).verdict, Verdict::Pass);
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
    fn an_operator_policy_is_checked_against_the_scanner_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, DEFAULT_POLICY).unwrap();
        assert!(Policy::load(&path).is_ok(), "the shipped policy loads");
        let typo = DEFAULT_POLICY.replace("HTML_HIDDEN_TEXT = 5.0", "HTML_HIDEN_TEXT = 5.0");
        std::fs::write(&path, &typo).unwrap();
        let e = Policy::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("no score for HTML_HIDDEN_TEXT") && e.contains("no scanner emits HTML_HIDEN_TEXT"),
            "{e}"
        );
    }

    #[test]
    fn bad_policies_are_rejected() {
        assert!(Policy::parse("[thresholds]\nflag=10.0\nquarantine=5.0\ndelete=20.0\n[scores]\n").is_err());
        assert!(Policy::parse("[thresholds]\nflag=1.0\nquarantine=5.0\ndelete=20.0\n[scores]\nX = \"maybe\"\n").is_err());
        assert!(Policy::parse("[thresholds]\nflag=1.0\nquarantine=5.0\ndelete=20.0\n[strong_evidence]\ntags=[\"Y\"]\n[scores]\n").is_err());
        assert!(Policy::parse("[thresholds]\nflag=1.0\nquarantine=5.0\ndelete=20.0\n[spam_evidence]\ntags=[\"Y\"]\n[scores]\n").is_err());
        assert!(Policy::parse("[thresholds]\nflag=5.0\njunk=4.0\nquarantine=10.0\ndelete=20.0\n[scores]\n").is_err());
        assert!(Policy::parse("[thresholds]\nflag=5.0\njunk=11.0\nquarantine=10.0\ndelete=20.0\n[scores]\n").is_err());
    }
}
