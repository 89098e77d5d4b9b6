//! What `check-config` warns about: settings that are valid but probably
//! not what the operator meant. Warnings never stop a start; they are
//! printed by `check-config` and logged at startup.

use super::{AccountConfig, Config, Problem, suggest};
use std::collections::BTreeMap;

/// Names read outside the settings parser (logging and the crash-test hook
/// read the process environment themselves).
const READ_ELSEWHERE: &[&str] = &["POSTERN_LOG", "POSTERN_TEST_FAILPOINT"];

/// Every warning for a configuration that loaded, given the `POSTERN_*`
/// variables it was loaded from.
pub fn warnings(config: &Config, vars: &BTreeMap<String, String>) -> Vec<Problem> {
    let mut out = unknown_vars(vars);
    if vars.get("POSTERN_ADMIN_PASSWORD_HASH").is_none_or(|v| v.trim().is_empty()) {
        out.push(Problem::new(
            "POSTERN_ADMIN_PASSWORD_HASH",
            "is not set: only users added with `postern user add` (or a hash set on the settings page) can sign in to the dashboard",
            "run `postern hash-password >> /etc/postern/postern.env` and type the password",
        ));
    }
    out.extend(same_mailbox(&config.accounts));
    out
}

/// `POSTERN_*` variables that Postern does not read, each with the name it
/// was probably meant to be.
pub fn unknown_vars(vars: &BTreeMap<String, String>) -> Vec<Problem> {
    let mut known = super::env::read_names(vars);
    known.extend(READ_ELSEWHERE.iter().map(|s| s.to_string()));
    vars.keys()
        .filter(|k| k.starts_with("POSTERN_") && !known.contains(*k))
        .map(|k| {
            let hint = match suggest::closest(k, known.iter().map(String::as_str)) {
                Some(m) => format!("did you mean {m}?"),
                None => "remove it, or see the README's configuration reference for the names Postern reads".into(),
            };
            Problem::new(k.clone(), "is not a setting Postern reads; it is ignored", hint)
        })
        .collect()
}

/// Two accounts that watch the same folder of the same mailbox would scan
/// and act on every message twice.
pub fn same_mailbox(accounts: &[AccountConfig]) -> Vec<Problem> {
    let mut seen: BTreeMap<(String, String, String), &str> = BTreeMap::new();
    let mut out = Vec::new();
    for a in accounts {
        for f in &a.folders {
            let key = (a.host.to_ascii_lowercase(), a.user.to_ascii_lowercase(), f.to_ascii_lowercase());
            match seen.get(&key) {
                Some(first) if *first != a.name => out.push(Problem::new(
                    format!("accounts.{}", a.name),
                    format!("watches {f} of {}@{}, which account {first} watches too", a.user, a.host),
                    "each message would be scanned and acted on twice: remove the folder from one of them",
                )),
                _ => {
                    seen.insert(key, &a.name);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn issue_22_a_misspelt_variable_gets_did_you_mean() {
        let w = unknown_vars(&vars(&[("POSTERN_TRHESHOLD_FLAG", "5"), ("POSTERN_THRESHOLD_QUARANTINE", "9")]));
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "POSTERN_TRHESHOLD_FLAG");
        assert_eq!(w[0].hint, "did you mean POSTERN_THRESHOLD_FLAG?");
    }

    #[test]
    fn variables_postern_reads_are_not_warned_about() {
        let w = unknown_vars(&vars(&[
            ("POSTERN_LISTEN", "127.0.0.1:1"),
            ("POSTERN_RSPAMD_URL", "http://127.0.0.1:11333"),
            ("POSTERN_LOG", "debug"),
            ("POSTERN_LOGWATCH_FILES", "/var/log/mail.log"),
        ]));
        assert!(w.is_empty(), "{w:?}");
    }

    fn account(name: &str, host: &str, user: &str, folders: &[&str]) -> AccountConfig {
        let y = format!(
            "accounts:\n  - {{name: {name}, host: {host}, user: {user}, pass: s3cr3t-Pw, folders: [{}]}}\n",
            folders.join(", ")
        );
        let mut p = Vec::new();
        let (mut a, _) = super::super::parse_accounts(&y, std::path::Path::new("/nonexistent"), &mut p);
        assert!(p.is_empty(), "{p:?}");
        a.remove(0)
    }

    #[test]
    fn issue_22_two_accounts_on_one_mailbox_get_a_warning() {
        let a = account("a", "mail.example.org", "u@example.org", &["INBOX"]);
        let b = account("b", "MAIL.example.org", "u@example.org", &["Archive", "INBOX"]);
        let w = same_mailbox(&[a.clone(), b]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("INBOX") && w[0].message.contains("account a"), "{w:?}");
        // Another user on the same server is another mailbox.
        let c = account("c", "mail.example.org", "v@example.org", &["INBOX"]);
        assert!(same_mailbox(&[a, c]).is_empty());
    }
}
