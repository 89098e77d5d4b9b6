//! Every tag the code can emit (here, above `scan` and `intel`, because
//! the runtime is what assembles both into one pipeline). Scores live only in `rules/policy.toml`,
//! and the test below keeps the two one-to-one.

use crate::scan::scanners::{attachments, clamav, html, lists, rspamd, spoof, structure, yara};

/// All tags every scanner can emit, plus the worker's size guard.
pub fn all() -> Vec<&'static str> {
    [
        structure::TAGS,
        lists::TAGS,
        attachments::TAGS,
        html::TAGS,
        spoof::TAGS,
        clamav::TAGS,
        rspamd::TAGS,
        yara::TAGS,
        // In the table whether or not this build has the AI tier.
        crate::scan::ai::TAGS,
        crate::intel::scanner::TAGS,
        crate::intel::rep::rdap::TAGS,
        crate::intel::rep::abuseipdb::TAGS,
        crate::intel::rep::virustotal::TAGS,
        &[crate::worker::TAG_SIZE_OVER_LIMIT],
        // The pipeline's work budgets (issue 18).
        crate::scan::budget::TAGS,
    ]
    .concat()
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
