//! Why a message was acted on, in one word an operator scans a list by:
//! virus, phishing, spam, blocked sender, scanner down. The score alone
//! says none of this (a blocked sender scores 0.0, EICAR 37.0).
//!
//! The category is derived from the stored tags and reason, never stored,
//! so it is right for old rows too and a policy change cannot leave it
//! stale. The same tag lists give the SQL that filters a list by category.

/// A category, from the most to the least specific. The first that
/// matches wins: EICAR from a blocked sender is a virus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// A critical scanner failed and the message was held fail-closed.
    ScannerDown,
    /// Malware: an antivirus, VirusTotal, a known-bad hash or a strong YARA rule.
    Virus,
    /// The sender is on the block list.
    BlockedSender,
    /// Credential theft and impersonation.
    Phishing,
    /// Spam engines and the spam model.
    Spam,
    /// Acted on for other evidence (attachments, HTML tricks, limits).
    Other,
}

/// The filter values, in menu order, with their labels. `observe` is not a
/// category of its own but a state: mail that would have been acted on but
/// was only recorded.
pub const FILTERS: &[(&str, &str)] = &[
    ("virus", "virus"),
    ("phishing", "phishing"),
    ("spam", "spam"),
    ("blocked", "blocked sender"),
    ("scanner_down", "scanner down"),
    ("other", "other"),
    ("observe", "observe-only"),
];

const VIRUS: &[&str] = &["AV_VIRUS", "VT_MALICIOUS", "INTEL_HASH", "YARA_MATCH_HIGH"];
const BLOCKED: &[&str] = &["LIST_SENDER_BLOCKED"];
const PHISHING: &[&str] = &[
    "AI_PHISH",
    "AI_UNWANTED_PHISH",
    "SPOOF_DISPLAY_NAME_ADDRESS",
    "SPOOF_DISPLAY_NAME_BRAND",
    "SPOOF_LOOKALIKE_DOMAIN",
    "URL_LOOKALIKE_DOMAIN",
    "URL_USERINFO_DOMAIN",
    "URL_TEXT_DOMAIN_MISMATCH",
    "HTML_PASSWORD_FORM",
    "ATT_HTML_ACTIVE",
    "INTEL_URL",
    "INTEL_DOMAIN",
    "INTEL_EMAIL",
];
const SPAM: &[&str] = &[
    "RSPAMD_REJECT",
    "RSPAMD_SPAM",
    "RSPAMD_FORGED_MUA",
    "AI_SPAM",
    "AI_SPAM_LIKELY",
    "AI_UNWANTED",
];
/// How the policy's reason starts when a critical scanner failed.
const FAIL_CLOSED: &str = "fail-closed";

impl Category {
    /// The filter value (`FILTERS`' first column).
    pub fn key(self) -> &'static str {
        match self {
            Category::ScannerDown => "scanner_down",
            Category::Virus => "virus",
            Category::BlockedSender => "blocked",
            Category::Phishing => "phishing",
            Category::Spam => "spam",
            Category::Other => "other",
        }
    }

    /// What the dashboard shows.
    pub fn label(self) -> &'static str {
        FILTERS.iter().find(|(k, _)| *k == self.key()).map_or("other", |(_, l)| *l)
    }

    /// The category of a decided message: `None` for mail that passed or
    /// was not scanned (a released copy, a recognised one).
    pub fn of(verdict: Option<&str>, tags: Option<&str>, reason: Option<&str>) -> Option<Category> {
        let verdict = verdict?;
        if verdict == "pass" {
            return None;
        }
        let tags: Vec<&str> = tags.unwrap_or("").split(',').map(str::trim).collect();
        let any = |list: &[&str]| tags.iter().any(|t| list.contains(t));
        Some(if reason.is_some_and(|r| r.starts_with(FAIL_CLOSED)) {
            Category::ScannerDown
        } else if any(VIRUS) {
            Category::Virus
        } else if any(BLOCKED) {
            Category::BlockedSender
        } else if any(PHISHING) {
            Category::Phishing
        } else if any(SPAM) {
            Category::Spam
        } else {
            Category::Other
        })
    }
}

/// An SQL condition on the `messages` table (columns `verdict`, `tags`,
/// `reason`, `observe_only`) that selects `filter`, or `None` for an
/// unknown filter. Built only from the constants above, never from input.
pub fn sql_condition(filter: &str) -> Option<String> {
    let has = |list: &[&str]| {
        let parts: Vec<String> = list
            .iter()
            .map(|t| format!("(',' || REPLACE(COALESCE(tags, ''), ' ', '') || ',') LIKE '%,{t},%'"))
            .collect();
        format!("({})", parts.join(" OR "))
    };
    let down = format!("COALESCE(reason, '') LIKE '{FAIL_CLOSED}%'");
    let decided = "verdict IS NOT NULL AND verdict <> 'pass'";
    let (virus, blocked, phishing, spam) = (has(VIRUS), has(BLOCKED), has(PHISHING), has(SPAM));
    Some(match filter {
        "observe" => format!("({decided} AND observe_only = 1)"),
        "scanner_down" => format!("({decided} AND {down})"),
        "virus" => format!("({decided} AND NOT {down} AND {virus})"),
        "blocked" => format!("({decided} AND NOT {down} AND NOT {virus} AND {blocked})"),
        "phishing" => format!("({decided} AND NOT {down} AND NOT {virus} AND NOT {blocked} AND {phishing})"),
        "spam" => format!("({decided} AND NOT {down} AND NOT {virus} AND NOT {blocked} AND NOT {phishing} AND {spam})"),
        "other" => format!("({decided} AND NOT {down} AND NOT {virus} AND NOT {blocked} AND NOT {phishing} AND NOT {spam})"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_22_eicar_is_a_virus_and_a_blocked_sender_says_so() {
        let eicar = Category::of(Some("quarantine"), Some("AV_VIRUS,LIST_SENDER_BLOCKED"), Some("score 37.0"));
        assert_eq!(eicar.map(Category::label), Some("virus"));
        let blocked = Category::of(Some("quarantine"), Some("LIST_SENDER_BLOCKED"), Some("blocked"));
        assert_eq!(blocked.map(Category::label), Some("blocked sender"));
        let down = Category::of(Some("quarantine"), Some("AV_VIRUS"), Some("fail-closed: rspamd: timeout"));
        assert_eq!(down, Some(Category::ScannerDown));
        assert_eq!(Category::of(Some("junk"), Some("RSPAMD_SPAM"), None), Some(Category::Spam));
        assert_eq!(
            Category::of(Some("flag"), Some("SPOOF_DISPLAY_NAME_BRAND"), None),
            Some(Category::Phishing)
        );
        assert_eq!(Category::of(Some("flag"), Some("ATT_LNK"), None), Some(Category::Other));
    }

    #[test]
    fn passed_and_unscanned_mail_has_no_category() {
        // A newsletter that passed keeps no label even if a weak tag fired.
        assert_eq!(Category::of(Some("pass"), Some("RSPAMD_SUSPICIOUS"), None), None);
        assert_eq!(Category::of(None, None, None), None);
    }

    #[test]
    fn the_sql_agrees_with_the_rust_on_every_filter() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE messages (id INTEGER PRIMARY KEY, verdict TEXT, tags TEXT, reason TEXT, observe_only INTEGER)")
            .unwrap();
        // (verdict, tags, reason, observe_only)
        type Row<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, i64);
        let rows: &[Row<'_>] = &[
            (Some("quarantine"), Some("AV_VIRUS,LIST_SENDER_BLOCKED"), Some("score 37"), 0),
            (Some("quarantine"), Some("LIST_SENDER_BLOCKED"), Some("blocked"), 0),
            (Some("quarantine"), Some("RSPAMD_RESULT"), Some("fail-closed: rspamd"), 0),
            (Some("junk"), Some("RSPAMD_RESULT, RSPAMD_SPAM"), None, 1),
            (Some("flag"), Some("AI_PHISH"), None, 0),
            (Some("flag"), Some("ATT_LNK"), None, 0),
            (Some("pass"), Some("AI_PHISH_NOT"), None, 0),
            (None, None, None, 0),
        ];
        for (v, t, r, o) in rows {
            db.execute(
                "INSERT INTO messages (verdict, tags, reason, observe_only) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![v, t, r, o],
            )
            .unwrap();
        }
        for (key, _) in FILTERS.iter().filter(|(k, _)| *k != "observe") {
            let sql = format!("SELECT id FROM messages WHERE {} ORDER BY id", sql_condition(key).unwrap());
            let got: Vec<i64> = db
                .prepare(&sql)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let want: Vec<i64> = rows
                .iter()
                .enumerate()
                .filter(|(_, (v, t, r, _))| Category::of(*v, *t, *r).map(Category::key) == Some(*key))
                .map(|(i, _)| i as i64 + 1)
                .collect();
            assert_eq!(got, want, "{key}");
            assert!(!want.is_empty(), "{key} has an example");
        }
        let sql = format!("SELECT id FROM messages WHERE {}", sql_condition("observe").unwrap());
        let got: Vec<i64> = db
            .prepare(&sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, vec![4]);
        assert_eq!(sql_condition("x' OR 1=1 --"), None);
    }
}
