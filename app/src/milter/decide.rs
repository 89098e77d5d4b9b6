//! From a decision to a milter reply and the headers that go with it. Pure,
//! so the table in the README is tested here.

use crate::config::{MilterReply, MilterSettings};
use crate::domain::{Decision, Verdict};
use std::collections::BTreeSet;

/// Headers Postern adds; instances already in a message are removed first,
/// so a sender cannot forge what Sieve rules read.
pub const OWN_HEADERS: &[&str] = &["X-Postern-Verdict", "X-Postern-Score", "X-Postern-Scan", "X-Spam"];

/// SMTP reply texts: short, with no internal detail (the reasons are in
/// the audit log and the dashboard).
pub const REJECT_TEXT: &str = "Message refused by content policy";
/// Text of a tempfail while a critical scanner is down or slow.
pub const TEMPFAIL_TEXT: &str = "Content scan unavailable, try again later";
/// Text of a tempfail for a message over the scan size limit.
pub const OVERSIZE_TEXT: &str = "Message too large to scan";

/// The reply a decision gets. Strong evidence (a `[strong_evidence]` tag,
/// e.g. a virus) is refused like a delete-class verdict even when the score
/// only reached quarantine, and even when another scanner was down; other
/// decisions made without a critical scanner's answer get
/// `on_scanner_down`, so mail is retried rather than judged half-blind.
pub fn reply_for(d: &Decision, s: &MilterSettings, strong: &BTreeSet<String>) -> MilterReply {
    let strong_hit = d.tags.iter().any(|t| strong.contains(t));
    match d.verdict {
        Verdict::Delete => s.on_delete,
        Verdict::Quarantine if strong_hit => s.on_delete,
        _ if scanner_down(d) => s.on_scanner_down,
        Verdict::Quarantine => s.on_quarantine,
        Verdict::Junk => s.on_junk,
        Verdict::Flag => s.on_flag,
        Verdict::Pass => MilterReply::Accept,
    }
}

/// Whether the decision was made without a critical scanner's answer.
fn scanner_down(d: &Decision) -> bool {
    d.reports.iter().any(|r| r.critical && r.error.is_some())
}

/// What to answer instead of `Hold` when this message cannot be held: the
/// MTA did not offer the quarantine action, or sent no queue id (`{i}`)
/// the dashboard could release it by. A threat is refused, a scanner
/// failure deferred (fail-closed, as before), spam and flags delivered
/// with their headers; nothing is held where no one can let it out.
pub fn instead_of_hold(d: &Decision) -> MilterReply {
    match d.verdict {
        Verdict::Delete | Verdict::Quarantine if scanner_down(d) => MilterReply::Tempfail,
        Verdict::Delete | Verdict::Quarantine => MilterReply::Reject,
        Verdict::Junk | Verdict::Flag | Verdict::Pass => MilterReply::Headers,
    }
}

/// Headers added to a message accepted with `reply`.
pub fn headers_for(d: &Decision, reply: MilterReply) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("X-Postern-Verdict", d.verdict.as_str().to_string()),
        ("X-Postern-Score", format!("{:.1}", d.score)),
    ];
    if matches!(reply, MilterReply::Headers | MilterReply::Hold) {
        h.push(("X-Spam", "Yes".to_string()));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ScannerReport;

    #[test]
    fn mail_that_cannot_be_held_is_refused_deferred_or_marked() {
        assert_eq!(
            instead_of_hold(&decision(Verdict::Quarantine, &["LURE_CREDENTIALS"])),
            MilterReply::Reject
        );
        assert_eq!(instead_of_hold(&decision(Verdict::Delete, &["AV_VIRUS"])), MilterReply::Reject);
        assert_eq!(instead_of_hold(&decision(Verdict::Junk, &["AI_SPAM"])), MilterReply::Headers);
        let mut down = decision(Verdict::Quarantine, &[]);
        down.reports.push(ScannerReport {
            scanner: "clamav".into(),
            critical: true,
            findings: Vec::new(),
            elapsed_ms: 1,
            error: Some("connection refused".into()),
        });
        assert_eq!(instead_of_hold(&down), MilterReply::Tempfail);
    }

    fn decision(verdict: Verdict, tags: &[&str]) -> Decision {
        Decision {
            verdict,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            score: 12.0,
            ..Default::default()
        }
    }

    #[test]
    fn the_default_table() {
        let (s, strong) = (MilterSettings::default(), BTreeSet::from(["AV_VIRUS".to_string()]));
        let r = |d: &Decision| reply_for(d, &s, &strong);
        assert_eq!(r(&decision(Verdict::Delete, &["AV_VIRUS"])), MilterReply::Reject);
        assert_eq!(r(&decision(Verdict::Quarantine, &["AV_VIRUS"])), MilterReply::Reject);
        assert_eq!(r(&decision(Verdict::Quarantine, &["LURE_CREDENTIALS"])), MilterReply::Hold);
        assert_eq!(r(&decision(Verdict::Junk, &["RSPAMD_REJECT"])), MilterReply::Headers);
        assert_eq!(r(&decision(Verdict::Flag, &["X"])), MilterReply::Headers);
        assert_eq!(r(&decision(Verdict::Pass, &[])), MilterReply::Accept);
    }

    #[test]
    fn a_critical_scanner_down_tempfails_unless_there_is_strong_evidence() {
        let (s, strong) = (MilterSettings::default(), BTreeSet::from(["AV_VIRUS".to_string()]));
        let down = ScannerReport {
            scanner: "rspamd".into(),
            critical: true,
            findings: Vec::new(),
            elapsed_ms: 1,
            error: Some("connection refused".into()),
        };
        let mut d = decision(Verdict::Quarantine, &["SCANNER_FAILED"]);
        d.reports.push(down.clone());
        assert_eq!(reply_for(&d, &s, &strong), MilterReply::Tempfail);
        let mut virus = decision(Verdict::Quarantine, &["AV_VIRUS"]);
        virus.reports.push(down.clone());
        assert_eq!(reply_for(&virus, &s, &strong), MilterReply::Reject);
        // A fail-open scanner's failure changes nothing.
        let mut open = decision(Verdict::Pass, &[]);
        open.reports.push(ScannerReport { critical: false, ..down });
        assert_eq!(reply_for(&open, &s, &strong), MilterReply::Accept);
    }

    #[test]
    fn spam_headers_only_where_sieve_should_act() {
        let names = |reply| {
            headers_for(&decision(Verdict::Junk, &[]), reply)
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(MilterReply::Headers), ["X-Postern-Verdict", "X-Postern-Score", "X-Spam"]);
        assert_eq!(names(MilterReply::Accept), ["X-Postern-Verdict", "X-Postern-Score"]);
        assert_eq!(headers_for(&decision(Verdict::Junk, &[]), MilterReply::Headers)[1].1, "12.0");
    }
}
