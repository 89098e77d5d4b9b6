//! One table of every scanner (issue 14, item 7), the way ripgrep keeps one
//! table of flags: its id, the tags it can emit, its deadline and what its
//! failure means. The scanners read their id, deadline and fail mode from
//! their row; the policy check ([`unscored`], [`unknown`]) and the
//! tags↔scores test walk [`SCANNERS`], so a new scanner or tag cannot be
//! left out of either.
//!
//! Each row names its scanner's own `TAGS` constant: a new tag is added
//! there (and scored in `rules/policy.toml`), never here.

use super::FailureMode;
use super::scanners::{attachments, clamav, html, lists, rspamd, spoof, structure, yara};
use crate::intel::rep::{abuseipdb, rdap, virustotal};
use std::time::Duration;

/// One scanner (or tag source) and its contract.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Stable id (scanner reports, `/health`, logs).
    pub id: &'static str,
    /// Every tag it can emit; each must be scored in the policy.
    pub tags: &'static [&'static str],
    /// Its deadline; with `timeout_setting`, the default of that setting.
    pub timeout: Duration,
    /// The environment variable that overrides `timeout`, if any.
    pub timeout_setting: Option<&'static str>,
    /// What its failure or timeout means; with `fail_setting`, the default.
    pub fail: FailureMode,
    /// The environment variable that makes it fail-closed (`true`) or
    /// fail-open (`false`), if any.
    pub fail_setting: Option<&'static str>,
    /// What turns it on.
    pub enabled_by: &'static str,
    /// The Cargo feature it needs, if any (its tags are scored either way,
    /// so one policy file serves every build).
    pub feature: Option<&'static str>,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const fn local(id: &'static str, tags: &'static [&'static str], timeout: Duration) -> Spec {
    Spec {
        id,
        tags,
        timeout,
        timeout_setting: None,
        fail: FailureMode::Open,
        fail_setting: None,
        enabled_by: "always on",
        feature: None,
    }
}

/// MIME structure and bounds.
pub const STRUCTURE: Spec = local("structure", structure::TAGS, secs(1));
/// Sender allow and block lists (config.yaml `policy:`).
pub const LISTS: Spec = local("lists", lists::TAGS, secs(1));
/// Attachment types, archives, macros.
pub const ATTACHMENTS: Spec = local("attachments", attachments::TAGS, secs(2));
/// HTML heuristics.
pub const HTML: Spec = local("html", html::TAGS, secs(5));
/// Display-name and lookalike spoofing.
pub const SPOOF: Spec = local("spoof", spoof::TAGS, secs(2));
/// Rspamd over HTTP.
pub const RSPAMD: Spec = Spec {
    id: "rspamd",
    tags: rspamd::TAGS,
    timeout: secs(20),
    timeout_setting: Some("POSTERN_RSPAMD_TIMEOUT_SECS"),
    fail: FailureMode::Closed,
    fail_setting: Some("POSTERN_RSPAMD_CRITICAL"),
    enabled_by: "POSTERN_RSPAMD_URL",
    feature: None,
};
/// ClamAV over clamd's socket.
pub const CLAMAV: Spec = Spec {
    id: "clamav",
    tags: clamav::TAGS,
    timeout: secs(30),
    timeout_setting: Some("POSTERN_CLAMD_TIMEOUT_SECS"),
    fail: FailureMode::Closed,
    fail_setting: Some("POSTERN_CLAMD_CRITICAL"),
    enabled_by: "POSTERN_CLAMD_ADDR",
    feature: None,
};
/// YARA-X rules from a folder.
pub const YARA: Spec = Spec {
    id: "yara",
    tags: yara::TAGS,
    timeout: secs(10),
    timeout_setting: Some("POSTERN_YARA_TIMEOUT_SECS"),
    fail: FailureMode::Closed,
    fail_setting: Some("POSTERN_YARA_CRITICAL"),
    enabled_by: "POSTERN_YARA_DIR",
    feature: None,
};
/// The AI tier (ONNX models).
pub const AI: Spec = Spec {
    id: "ai",
    tags: super::ai::TAGS,
    timeout: secs(10),
    timeout_setting: None,
    fail: FailureMode::Open,
    fail_setting: None,
    enabled_by: "POSTERN_AI_MODELS and an ONNX Runtime",
    feature: Some("ai"),
};
/// Threat-intelligence feeds and operator IOCs. Its deadline is the
/// unshortener's (`POSTERN_UNSHORTEN_TIMEOUT_SECS`) plus five seconds.
pub const INTEL: Spec = Spec {
    id: "intel",
    tags: crate::intel::scanner::TAGS,
    timeout: secs(10),
    timeout_setting: Some("POSTERN_UNSHORTEN_TIMEOUT_SECS"),
    fail: FailureMode::Open,
    fail_setting: None,
    enabled_by: "always on (empty until feeds or IOCs are loaded)",
    feature: None,
};
/// Domain age over RDAP.
pub const RDAP: Spec = Spec {
    id: "rdap",
    tags: rdap::TAGS,
    timeout: secs(10),
    timeout_setting: None,
    fail: FailureMode::Open,
    fail_setting: None,
    enabled_by: "POSTERN_RDAP",
    feature: None,
};
/// AbuseIPDB reputation of the sending IP.
pub const ABUSEIPDB: Spec = Spec {
    id: "abuseipdb",
    tags: abuseipdb::TAGS,
    timeout: secs(5),
    timeout_setting: None,
    fail: FailureMode::Open,
    fail_setting: None,
    enabled_by: "POSTERN_ABUSEIPDB_KEY",
    feature: None,
};
/// VirusTotal verdicts on attachment hashes.
pub const VIRUSTOTAL: Spec = Spec {
    id: "virustotal",
    tags: virustotal::TAGS,
    timeout: secs(10),
    timeout_setting: None,
    fail: FailureMode::Open,
    fail_setting: None,
    enabled_by: "POSTERN_VIRUSTOTAL_KEY",
    feature: None,
};
/// Not a scanner: the pipeline's work budgets (issue 18) report as `budget`.
pub const BUDGET: Spec = Spec {
    enabled_by: "the pipeline itself",
    ..local("budget", super::budget::TAGS, Duration::ZERO)
};
/// Not a scanner: the worker's size guard, for mail too large to fetch.
pub const SIZE: Spec = Spec {
    enabled_by: "POSTERN_MAX_MESSAGE_BYTES",
    ..local("size", &[crate::worker::TAG_SIZE_OVER_LIMIT], Duration::ZERO)
};

/// Every scanner and tag source, in pipeline order.
pub const SCANNERS: &[Spec] = &[
    STRUCTURE,
    LISTS,
    ATTACHMENTS,
    HTML,
    SPOOF,
    RSPAMD,
    CLAMAV,
    YARA,
    AI,
    INTEL,
    RDAP,
    ABUSEIPDB,
    VIRUSTOTAL,
    BUDGET,
    SIZE,
];

/// The row for `id`.
pub fn spec(id: &str) -> Option<&'static Spec> {
    SCANNERS.iter().find(|s| s.id == id)
}

/// Every tag any scanner can emit.
pub fn all_tags() -> Vec<&'static str> {
    SCANNERS.iter().flat_map(|s| s.tags.iter().copied()).collect()
}

/// Tags some scanner emits that `scored` has no weight for.
pub fn unscored<'a>(scored: impl Fn(&str) -> bool + 'a) -> Vec<&'static str> {
    all_tags().into_iter().filter(|t| !scored(t)).collect()
}

/// Tags in `scored` that no scanner emits (a typo, or a removed check).
pub fn unknown<'a>(scored: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let known = all_tags();
    scored.into_iter().filter(|t| !known.contains(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PolicyConfig;
    use std::collections::BTreeSet;

    #[test]
    fn ids_and_tags_are_unique() {
        let mut ids = BTreeSet::new();
        let mut tags = BTreeSet::new();
        for s in SCANNERS {
            assert!(ids.insert(s.id), "scanner id {} twice", s.id);
            for t in s.tags {
                assert!(tags.insert(*t), "tag {t} in two rows");
            }
        }
    }

    #[test]
    fn the_local_scanners_run_by_their_rows() {
        for sc in super::super::scanners::local(&PolicyConfig::default(), &[]) {
            let row = spec(sc.id()).unwrap_or_else(|| panic!("{} has no row", sc.id()));
            assert_eq!(sc.timeout(), row.timeout, "{}", row.id);
            assert_eq!(sc.failure_mode(), row.fail, "{}", row.id);
            assert_eq!(sc.tags(), row.tags, "{}", row.id);
        }
    }
}
