//! Turns parse problems and bounds hit while building the input into tags,
//! so a zip bomb or 10,000 MIME parts end as an explained verdict.

use crate::domain::Finding;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use std::time::Duration;

/// A size, depth or count bound stopped part of the scan.
pub const TAG_LIMIT: &str = "MIME_LIMIT_EXCEEDED";
/// The message is not parseable MIME at all.
pub const TAG_UNPARSEABLE: &str = "MIME_UNPARSEABLE";
/// MIME parts past the part-count bound, or a message/rfc822 nested past
/// the depth bound, were never scanned (issue 18: an `invoice.exe` after
/// 1,000 parts or at depth 7 passed with only MIME_LIMIT_EXCEEDED).
pub const TAG_UNINSPECTED: &str = "MIME_UNINSPECTED";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_LIMIT, TAG_UNPARSEABLE, TAG_UNINSPECTED];

/// Structure scanner.
#[derive(Debug, Default)]
pub struct StructureScanner;

impl Scanner for StructureScanner {
    fn id(&self) -> &'static str {
        crate::scan::registry::STRUCTURE.id
    }
    fn timeout(&self) -> Duration {
        crate::scan::registry::STRUCTURE.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        crate::scan::registry::STRUCTURE.fail
    }
    fn cpu_bound(&self) -> bool {
        true
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(async move {
            let mut out = Vec::new();
            if input.unparseable {
                out.push(Finding::new(TAG_UNPARSEABLE, input.notes.join("; ")));
            } else if !input.notes.is_empty() {
                out.push(Finding::new(TAG_LIMIT, input.notes.join("; ")));
            }
            if !input.unscanned.is_empty() {
                out.push(Finding::new(TAG_UNINSPECTED, input.unscanned.join("; ")));
            }
            Ok(out)
        })
    }
}
