//! Human-readable rendering of a decision for `postern scan --explain`.

use super::Policy;
use super::policy::Weight;
use crate::domain::Decision;
use std::fmt::Write;

/// Renders the verdict; with `detail`, every scanner and tag too.
pub fn explain(d: &Decision, policy: &Policy, detail: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "verdict: {}  (score {:.1})", d.verdict, d.score);
    let _ = writeln!(out, "reason:  {}", d.reason);
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
