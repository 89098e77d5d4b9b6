//! Every tag the code can emit. Scores live only in `rules/policy.toml`,
//! and the test below keeps the two one-to-one.

use super::Scanner;
use super::scanners::{attachments, clamav, html, lists, rspamd, spoof, structure, yara};

/// Tags emitted outside the scanners (the worker's size guard).
pub const WORKER_TAGS: &[&str] = &[crate::worker::TAG_SIZE_OVER_LIMIT];

/// All tags every scanner type can emit, plus the worker's.
pub fn all() -> Vec<&'static str> {
    let scanners: Vec<Box<dyn Scanner>> = vec![
        Box::new(structure::StructureScanner),
        Box::new(lists::ListScanner::new(Default::default())),
        Box::new(attachments::AttachmentScanner),
        Box::new(html::HtmlScanner),
        Box::new(spoof::SpoofScanner::new([])),
        Box::new(clamav::ClamavScanner::new(
            "127.0.0.1:0",
            std::time::Duration::ZERO,
            super::FailureMode::Open,
            0,
        )),
    ];
    let mut v: Vec<&'static str> = scanners.iter().flat_map(|s| s.tags().iter().copied()).collect();
    v.extend([rspamd::TAG_RESULT, rspamd::TAG_REJECT, rspamd::TAG_SPAM, rspamd::TAG_SUSPICIOUS]);
    v.extend([yara::TAG_HIGH, yara::TAG_MEDIUM, yara::TAG_LOW]);
    v.extend(WORKER_TAGS);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Policy;
    use std::collections::BTreeSet;

    #[test]
    fn policy_table_and_tags_are_one_to_one() {
        let policy = Policy::default_policy().unwrap();
        let scored: BTreeSet<&str> = policy.scores.keys().map(String::as_str).collect();
        let emitted: BTreeSet<&str> = all().into_iter().collect();
        let unscored: Vec<_> = emitted.difference(&scored).collect();
        let orphaned: Vec<_> = scored.difference(&emitted).collect();
        assert!(
            unscored.is_empty() && orphaned.is_empty(),
            "no score for {unscored:?}; no scanner emits {orphaned:?}"
        );
    }
}
