//! Every tag the code can emit. Scores live only in `rules/scores.toml`.

use super::policy::{TAG_SENDER_ALLOWED, TAG_SENDER_BLOCKED};
use crate::worker::TAG_SIZE_OVER_LIMIT;

/// All tags, for the one-to-one check against the score table.
pub const ALL: &[&str] = &[TAG_SENDER_BLOCKED, TAG_SENDER_ALLOWED, TAG_SIZE_OVER_LIMIT];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn score_table_and_tags_are_one_to_one() {
        let table: toml::Table = include_str!("../../../rules/scores.toml").parse().unwrap();
        let scored: BTreeSet<&str> = table.keys().map(String::as_str).collect();
        let emitted: BTreeSet<&str> = ALL.iter().copied().collect();
        assert_eq!(scored, emitted, "rules/scores.toml and scan::tags::ALL differ");
        for (k, v) in &table {
            assert!(
                v.is_float() || v.is_integer() || matches!(v.as_str(), Some("quarantine" | "pass")),
                "{k} = {v}"
            );
        }
    }
}
