//! Every tag the code can emit, read from the one scanner table
//! ([`crate::scan::registry::SCANNERS`]). Scores live only in
//! `rules/policy.toml`, and the test below keeps the two one-to-one.

/// All tags every scanner can emit, plus the pipeline's budgets and the
/// worker's size guard.
pub fn all() -> Vec<&'static str> {
    crate::scan::registry::all_tags()
}

#[cfg(test)]
mod tests {
    use crate::scan::Policy;

    #[test]
    fn policy_table_and_tags_are_one_to_one() {
        let policy = Policy::default_policy().unwrap();
        let problems = policy.tag_problems();
        assert!(problems.is_empty(), "{problems:?}");
    }
}
