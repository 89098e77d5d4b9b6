//! From Rspamd's reply to Postern's tag: Rspamd's action, less the symbols
//! that say nothing about the mail in Postern's setting (`rules/rspamd.toml`).
//!
//! Postern reads mail after delivery over IMAP. It never sees the SMTP
//! envelope (it rebuilds one from the headers), it may scan mail days after
//! its Date, and Rspamd may run without DNS. Symbols that only reflect that
//! (`DATE_IN_PAST`, `RDNS_NONE` when the lookup itself failed, …) pushed 45–62%
//! of two modern mailing lists over Rspamd's "add header" score. They are
//! subtracted from Rspamd's score and its action is lowered by as many bands
//! as the subtraction crosses; everything else Rspamd says, and any action
//! its score does not explain (forced by a prefilter or its settings), stands.

use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The shipped neutral-symbol table.
pub const DEFAULT_RULES: &str = include_str!("../../../../rules/rspamd.toml");

/// Rspamd's default action scores, as shares of its reject score (15):
/// greylist 4, add header 6. Scaled to the reject score a reply reports.
const GREYLIST_SHARE: f64 = 4.0 / 15.0;
const ADD_HEADER_SHARE: f64 = 6.0 / 15.0;
/// Rspamd's default reject score, for replies that report none.
const DEFAULT_REJECT: f64 = 15.0;

/// Symbols that are not evidence in Postern's setting.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    neutral: Neutral,
    #[serde(default)]
    forged_mua: ForgedMua,
}

/// Rspamd symbols that say the message forges the mail program it names.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgedMua {
    symbols: Vec<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Neutral {
    /// Never evidence here.
    #[serde(default)]
    always: Vec<String>,
    /// `SYMBOL = "MARKER"`: not evidence when MARKER says the lookup behind
    /// SYMBOL failed (no DNS); evidence with a working resolver.
    #[serde(default)]
    when: BTreeMap<String, String>,
}

/// The shipped table, parsed once (a unit test proves it parses).
pub static RULES: LazyLock<Rules> = LazyLock::new(|| Rules::parse(DEFAULT_RULES).unwrap_or_default());

impl Rules {
    /// Parses a table in the `rules/rspamd.toml` format.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The symbols of `symbols` that say the mail program it names is forged.
    pub fn forged_mua<'a>(&self, symbols: &'a BTreeMap<String, f64>) -> Vec<&'a str> {
        symbols
            .keys()
            .filter(|k| self.forged_mua.symbols.iter().any(|s| s == *k))
            .map(String::as_str)
            .collect()
    }

    fn is_neutral(&self, symbol: &str, symbols: &BTreeMap<String, f64>) -> bool {
        self.neutral.always.iter().any(|s| s == symbol) || self.neutral.when.get(symbol).is_some_and(|marker| symbols.contains_key(marker))
    }
}

/// Rspamd's action as a rank: 0 none, 1 greylist/soft reject, 2 add
/// header/rewrite subject, 3 reject.
fn action_rank(action: &str) -> u8 {
    match action {
        "reject" => 3,
        "add header" | "rewrite subject" => 2,
        "greylist" | "soft reject" => 1,
        _ => 0,
    }
}

/// The rank Rspamd's default thresholds give `score`.
fn band(score: f64, reject: f64) -> u8 {
    if score >= reject {
        3
    } else if score >= reject * ADD_HEADER_SHARE {
        2
    } else if score >= reject * GREYLIST_SHARE {
        1
    } else {
        0
    }
}

/// Postern's reading of one Rspamd reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// 0 none, 1 suspicious, 2 spam, 3 reject (see [`action_rank`]).
    pub rank: u8,
    /// Rspamd's score less the neutral symbols.
    pub evidence: f64,
    /// The neutral symbols that scored, with their score.
    pub neutral: Vec<(String, f64)>,
}

impl Rules {
    /// Reads a reply: `action` and `score` as Rspamd gave them, `reject` its
    /// reject score (`required_score`; 0 means unknown), `symbols` every
    /// symbol with its score.
    pub fn assess(&self, action: &str, score: f64, reject: f64, symbols: &BTreeMap<String, f64>) -> Assessment {
        let reject = if reject > 0.0 { reject } else { DEFAULT_REJECT };
        let neutral: Vec<(String, f64)> = symbols
            .iter()
            .filter(|(k, v)| **v > 0.0 && self.is_neutral(k, symbols))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let evidence = score - neutral.iter().map(|(_, v)| v).sum::<f64>();
        // Lower the action by the bands the neutral symbols alone crossed:
        // with Rspamd's defaults that is the band of the evidence; with an
        // operator's own thresholds or a forced action, the action moves by
        // the same number of steps, never below none.
        let drop = band(score, reject).saturating_sub(band(evidence, reject));
        Assessment {
            rank: action_rank(action).saturating_sub(drop),
            evidence,
            neutral,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syms(list: &[(&str, f64)]) -> BTreeMap<String, f64> {
        list.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn the_shipped_table_parses_and_names_the_offline_artefacts() {
        let r = Rules::parse(DEFAULT_RULES).expect("rules/rspamd.toml parses");
        assert!(r.neutral.always.iter().any(|s| s == "SPOOF_REPLYTO"), "{r:?}");
        assert_eq!(r.neutral.when.get("RDNS_NONE").map(String::as_str), Some("RDNS_DNSFAIL"));
        assert_eq!(RULES.neutral.always, r.neutral.always, "the static is the shipped table");
        assert!(Rules::parse("[neutral]\nnever = []").is_err(), "a misspelt key is an error");
        assert!(r.forged_mua.symbols.iter().any(|s| s == "FORGED_MUA_OUTLOOK"), "{r:?}");
    }

    #[test]
    fn forged_mail_programs_are_named_and_nothing_else() {
        let s = syms(&[
            ("FORGED_MUA_OUTLOOK", 3.0),
            ("RATWARE_MS_HASH", 2.0),
            ("FORGED_SENDER", 0.3),
            ("MIME_HTML_ONLY", 0.2),
        ]);
        assert_eq!(RULES.forged_mua(&s), vec!["FORGED_MUA_OUTLOOK", "RATWARE_MS_HASH"]);
        assert!(
            RULES.forged_mua(&syms(&[("FORGED_SENDER", 0.3)])).is_empty(),
            "envelope forgery is Postern's own rebuild"
        );
    }

    #[test]
    fn a_missing_reverse_name_counts_unless_the_lookup_failed() {
        let online = syms(&[("RDNS_NONE", 2.0), ("MISSING_MIME_VERSION", 2.0), ("R_BAD_CTE_7BIT", 3.0)]);
        let a = RULES.assess("add header", 7.0, 15.0, &online);
        assert_eq!((a.rank, a.neutral.len()), (2, 0), "a working resolver found no name: evidence");
        let mut offline = online.clone();
        offline.insert("RDNS_DNSFAIL".into(), 0.0);
        let a = RULES.assess("add header", 7.0, 15.0, &offline);
        assert_eq!(a.neutral, vec![("RDNS_NONE".to_string(), 2.0)]);
        assert_eq!((a.rank, a.evidence), (1, 5.0), "5 is Rspamd's greylist band");
    }

    #[test]
    fn the_action_drops_by_the_bands_the_neutral_symbols_crossed() {
        let s = syms(&[("SPOOF_REPLYTO", 6.0), ("DATE_IN_PAST", 1.0), ("BAYES_SPAM", 9.0)]);
        assert_eq!(RULES.assess("reject", 16.0, 15.0, &s).rank, 2, "9 left: add header");
        // An operator's reject at 30 scales the bands (greylist 8, add header 12).
        assert_eq!(
            RULES.assess("add header", 16.0, 30.0, &s).rank,
            1,
            "16 → 9: from add header to greylist"
        );
        // No reject score reported: Rspamd's default (15).
        assert_eq!(RULES.assess("reject", 16.0, 0.0, &s).rank, 2);
    }

    #[test]
    fn an_action_the_score_does_not_explain_stands() {
        // A prefilter (antivirus, a multimap "action" rule) forces reject
        // at a low score: no band was crossed, so nothing is lowered.
        let s = syms(&[("DATE_IN_PAST", 1.0), ("CLAM_VIRUS", 0.0)]);
        assert_eq!(RULES.assess("reject", 1.0, 15.0, &s).rank, 3);
        assert_eq!(RULES.assess("no action", 1.0, 15.0, &s).rank, 0);
        assert_eq!(RULES.assess("soft reject", 0.0, 15.0, &BTreeMap::new()).rank, 1);
    }
}
