//! Human-readable rendering of a decision for `postern scan --explain`.

use super::Policy;
use super::policy::Weight;
use super::scanners::Disabled;
use crate::domain::Decision;
use std::fmt::Write;

/// The content engines whose absence makes a verdict worth little: without
/// them only Postern's own structure, HTML and link heuristics looked at the
/// mail, and spam such as GTUBE passes.
const ENGINES: &[&str] = &["rspamd", "clamav"];

/// Renders the verdict; with `detail`, every scanner and tag too, and the
/// scanners that are off (`disabled`: id and why, from the pipeline).
pub fn explain(d: &Decision, policy: &Policy, detail: bool, disabled: &[Disabled]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "verdict: {}  (score {:.1})", d.verdict, d.score);
    let _ = writeln!(out, "reason:  {}", d.reason);
    let engines_answered = d.reports.iter().any(|r| ENGINES.contains(&r.scanner.as_str()) && r.error.is_none());
    if !engines_answered {
        let _ = writeln!(
            out,
            "note:    no real engine answered (neither Rspamd nor ClamAV): this verdict rests on Postern's own \
             heuristics only; set POSTERN_RSPAMD_URL and POSTERN_CLAMD_ADDR"
        );
    }
    if !detail {
        return out;
    }
    let _ = writeln!(out, "\nscanners:");
    for r in &d.reports {
        let state = match &r.error {
            Some(e) => format!("ERROR {e}"),
            None if r.findings.is_empty() => "clean".to_string(),
            None => format!("{} finding(s)", r.findings.len()),
        };
        let crit = if r.critical { " [critical]" } else { "" };
        let _ = writeln!(out, "  {:<12} {:>6} ms  {state}{crit}", r.scanner, r.elapsed_ms);
    }
    if !disabled.is_empty() {
        let _ = writeln!(out, "\nscanners that are off:");
        for (id, why) in disabled {
            let _ = writeln!(out, "  {id:<12} {why}");
        }
    }
    let _ = writeln!(out, "\ntags:");
    if d.reports.iter().all(|r| r.findings.is_empty()) {
        let _ = writeln!(out, "  (none)");
    }
    for f in d.reports.iter().flat_map(|r| &r.findings) {
        let w = match policy.weight(&f.tag) {
            Some(Weight::Score(s)) => format!("{s:+.1}"),
            Some(Weight::Quarantine) => "quarantine".to_string(),
            None => "unscored".to_string(),
        };
        let _ = writeln!(out, "  {:<28} {:>10}  {}", f.tag, w, f.detail.as_deref().unwrap_or(""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ScannerReport, Verdict};

    fn decision(reports: &[(&str, Option<&str>)]) -> Decision {
        Decision {
            verdict: Verdict::Pass,
            tags: Vec::new(),
            reason: "no findings".into(),
            score: 0.0,
            reports: reports
                .iter()
                .map(|(id, err)| ScannerReport {
                    scanner: id.to_string(),
                    critical: false,
                    findings: Vec::new(),
                    elapsed_ms: 1,
                    error: err.map(str::to_string),
                })
                .collect(),
            observables: Vec::new(),
        }
    }

    #[test]
    fn issue_22_a_verdict_without_engines_says_so_and_lists_what_is_off() {
        let policy = Policy::default_policy().unwrap();
        let off = vec![("rspamd".to_string(), "not configured (POSTERN_RSPAMD_URL)".to_string())];
        let text = explain(&decision(&[("structure", None), ("html", None)]), &policy, true, &off);
        assert!(text.contains("no real engine answered"), "{text}");
        assert!(text.contains("scanners that are off:\n  rspamd"), "{text}");
        assert!(text.contains("POSTERN_RSPAMD_URL"), "{text}");
        // An engine that errored is no engine either.
        let text = explain(&decision(&[("rspamd", Some("timeout"))]), &policy, false, &[]);
        assert!(text.contains("no real engine answered"), "{text}");
    }

    #[test]
    fn a_verdict_with_an_engine_has_no_such_note() {
        let text = explain(
            &decision(&[("structure", None), ("rspamd", None)]),
            &Policy::default_policy().unwrap(),
            true,
            &[],
        );
        assert!(!text.contains("no real engine"), "{text}");
        assert!(!text.contains("scanners that are off"), "{text}");
    }
}
