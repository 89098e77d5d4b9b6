//! Work budgets per message (issue 18: one hostile message stalled a whole
//! folder). Every CPU-heavy stage does bounded work (HTML in
//! [`super::htmlbound`], images in [`super::qr`]); the deadlines here are
//! the backstop. A bound or deadline that was hit is evidence, not a pass:
//! it becomes a tag in a synthetic `budget` report that the policy scores.

use super::ScanInput;
use crate::domain::{Finding, ScannerReport};
use std::time::Duration;

/// A local stage (parsing, or a CPU-bound scanner) ran past its deadline;
/// its work was abandoned and the message was not fully inspected.
pub const TAG_TIME: &str = "SCAN_BUDGET_EXCEEDED";
/// An HTML body was larger than the tree builder is allowed to see.
pub const TAG_HTML: &str = "HTML_LIMIT_EXCEEDED";
/// An image could not be fully searched for QR codes.
pub const TAG_QR: &str = "QR_LIMIT_EXCEEDED";
/// A PDF attachment could not be (fully) read for links, actions and QR
/// codes: too large, damaged, or locked with a password.
pub const TAG_PDF: &str = "PDF_LIMIT_EXCEEDED";
/// An Office attachment could not be (fully) read for links and QR
/// codes: not a readable package, or past a bound.
pub const TAG_OFFICE: &str = "OFFICE_LIMIT_EXCEEDED";
/// Every tag the budget report can carry.
pub const TAGS: &[&str] = &[TAG_TIME, TAG_HTML, TAG_QR, TAG_PDF, TAG_OFFICE];

/// Wall-clock deadline for parsing one message into a [`ScanInput`].
/// Parsing is bounded work (parts, depth, body bytes, HTML elements, image
/// pixels) that takes well under a second on one core (BENCHMARKS.md);
/// this is the backstop when that reasoning fails or the host is starved.
pub const PARSE_BUDGET: Duration = Duration::from_secs(10);

/// Id of the synthetic report.
pub const REPORT_ID: &str = "budget";

/// Bounds and deadlines hit while scanning one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Stages that ran past their deadline, with detail.
    pub time: Vec<String>,
    /// HTML bodies cut short.
    pub html: Vec<String>,
    /// Images not fully searched for QR codes.
    pub qr: Vec<String>,
    /// PDF attachments not fully read.
    pub pdf: Vec<String>,
    /// Office attachments not fully read.
    pub office: Vec<String>,
}

/// Details kept per kind of limit (a thousand HTML parts must not make a
/// thousand-line finding).
const MAX_DETAILS: usize = 8;

impl Limits {
    /// Records `detail` in `list`, bounded and de-duplicated.
    pub fn push(list: &mut Vec<String>, detail: String) {
        if list.len() < MAX_DETAILS && !list.contains(&detail) {
            list.push(detail);
        }
    }

    /// Nothing was hit.
    pub fn is_empty(&self) -> bool {
        self.time.is_empty() && self.html.is_empty() && self.qr.is_empty() && self.pdf.is_empty() && self.office.is_empty()
    }
}

/// The synthetic report for `input`'s limits plus the local scanners that
/// timed out (`timed_out`); `None` when nothing was hit.
pub fn report(input: &ScanInput, timed_out: &[String]) -> Option<ScannerReport> {
    let l = &input.limits;
    let time: Vec<&String> = l.time.iter().chain(timed_out).collect();
    let mut findings = Vec::new();
    for (tag, details) in [
        (TAG_TIME, time),
        (TAG_HTML, l.html.iter().collect()),
        (TAG_QR, l.qr.iter().collect()),
        (TAG_PDF, l.pdf.iter().collect()),
        (TAG_OFFICE, l.office.iter().collect()),
    ] {
        if !details.is_empty() {
            let joined: Vec<&str> = details.iter().map(|s| s.as_str()).collect();
            findings.push(Finding::new(tag, joined.join("; ")));
        }
    }
    (!findings.is_empty()).then(|| ScannerReport {
        scanner: REPORT_ID.to_string(),
        critical: false,
        findings,
        elapsed_ms: 0,
        error: None,
    })
}
