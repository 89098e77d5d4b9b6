//! Log watch settings: the mail server's log files, the rules file, the
//! MaxMind databases and reverse DNS. From `config.yaml`'s `logwatch:`
//! section, with `POSTERN_LOGWATCH_*` variables taking precedence. Off
//! until at least one file is named.

use super::env::Reader;
use super::problem::Problem;
use crate::logwatch::rules::{DEFAULT, Rules};
use serde_norway::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Keys of config.yaml's `logwatch:` section.
pub const LOGWATCH_KEYS: &[&str] = &["files", "journal", "rules", "geoip", "rdns", "blocklist"];

/// Log watch settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LogwatchSettings {
    /// Log files to follow (`POSTERN_LOGWATCH_FILES`, comma-separated, or
    /// `logwatch.files`); empty turns log watch off.
    pub files: Vec<PathBuf>,
    /// systemd units whose journal is read through `journalctl -o json`
    /// (`POSTERN_LOGWATCH_JOURNAL`, comma-separated, or `logwatch.journal`),
    /// e.g. `postfix@-.service,dovecot.service`; empty: no journal.
    pub journal: Vec<String>,
    /// The `journalctl` program.
    pub journalctl: PathBuf,
    /// The rules file (`POSTERN_LOGWATCH_RULES` or `logwatch.rules`), when
    /// not the shipped defaults.
    pub rules_path: Option<PathBuf>,
    /// The validated rules.
    pub rules: Rules,
    /// MaxMind-format databases (`POSTERN_LOGWATCH_GEOIP` or `logwatch.geoip`).
    pub geoip: Vec<PathBuf>,
    /// Reverse DNS of attackers (`POSTERN_LOGWATCH_RDNS` or `logwatch.rdns`, default false).
    pub rdns: bool,
    /// Deadline of one reverse lookup (`POSTERN_LOGWATCH_RDNS_TIMEOUT_MS`, default 1000).
    pub rdns_timeout: Duration,
    /// How often the files are read (`POSTERN_LOGWATCH_POLL_SECS`, default 5).
    pub poll: Duration,
    /// A plain blocklist file of current attacker addresses and networks,
    /// one per line, for nftables sets or fail2ban
    /// (`POSTERN_LOGWATCH_BLOCKLIST` or `logwatch.blocklist`); unset: none.
    pub blocklist: Option<PathBuf>,
}

impl Default for LogwatchSettings {
    fn default() -> Self {
        LogwatchSettings {
            files: Vec::new(),
            journal: Vec::new(),
            journalctl: PathBuf::from("journalctl"),
            rules_path: None,
            rules: Rules::parse(DEFAULT).unwrap_or_else(|_| unreachable_rules()),
            geoip: Vec::new(),
            rdns: false,
            rdns_timeout: Duration::from_millis(1000),
            poll: Duration::from_secs(5),
            blocklist: None,
        }
    }
}

/// The shipped rules are checked by a unit test; this only keeps `Default`
/// total without a panic path.
fn unreachable_rules() -> Rules {
    Rules {
        window_minutes: 10,
        ipv4_prefix: 24,
        ipv6_prefix: 64,
        max_tracked: 100_000,
        ignore: Vec::new(),
        thresholds: crate::logwatch::rules::Thresholds {
            ip_failures: 10,
            network_failures: 30,
            user_failures: 20,
            spray_users_per_ip: 5,
            spray_ips_per_user: 5,
            probes_per_ip: 30,
            rejects_per_ip: 20,
            success_after_failures: 5,
        },
        ioc: crate::logwatch::rules::IocRules {
            expiry_hours: 168,
            confidence_brute_force: 70,
            confidence_network: 50,
            confidence_spray: 85,
            confidence_probing: 40,
            confidence_rejects: 40,
            confidence_compromise: 90,
        },
    }
}

fn paths(v: &str) -> Vec<PathBuf> {
    v.split(',').map(str::trim).filter(|p| !p.is_empty()).map(PathBuf::from).collect()
}

/// What config.yaml's `logwatch:` section says.
#[derive(Debug, Default)]
pub(super) struct FromFile {
    files: Vec<PathBuf>,
    journal: Vec<String>,
    rules: Option<PathBuf>,
    geoip: Vec<PathBuf>,
    rdns: Option<bool>,
    blocklist: Option<PathBuf>,
}

/// Reads the `logwatch:` section of config.yaml's text (problems are
/// reported by key; a YAML error is the accounts parser's to report).
pub(super) fn from_yaml(text: &str, problems: &mut Vec<Problem>) -> FromFile {
    let mut out = FromFile::default();
    let Ok(doc) = serde_norway::from_str::<Value>(text) else {
        return out;
    };
    let Some(section) = doc.get("logwatch") else { return out };
    let Some(m) = section.as_mapping() else {
        if !section.is_null() {
            problems.push(Problem::new(
                "logwatch",
                "must be a mapping",
                "e.g. `logwatch: {files: [/var/log/mail.log]}`",
            ));
        }
        return out;
    };
    for k in m.keys() {
        let k = k.as_str().unwrap_or("?");
        if !LOGWATCH_KEYS.contains(&k) {
            problems.push(Problem::new(
                format!("logwatch.{k}"),
                "unknown key",
                super::suggest::unknown_key_hint(k, LOGWATCH_KEYS),
            ));
        }
    }
    let list = |key: &str, problems: &mut Vec<Problem>| -> Vec<PathBuf> {
        match m.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![PathBuf::from(s)],
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(|i| match i.as_str() {
                    Some(s) => Some(PathBuf::from(s)),
                    None => {
                        problems.push(Problem::new(
                            format!("logwatch.{key}"),
                            "must list paths",
                            "e.g. [/var/log/mail.log]",
                        ));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                problems.push(Problem::new(
                    format!("logwatch.{key}"),
                    "must be a path or a list of paths",
                    "e.g. [/var/log/mail.log]",
                ));
                Vec::new()
            }
        }
    };
    out.files = list("files", problems);
    out.geoip = list("geoip", problems);
    out.journal = list("journal", problems).into_iter().map(|p| p.display().to_string()).collect();
    out.rules = m.get("rules").and_then(Value::as_str).map(PathBuf::from);
    match m.get("blocklist") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out.blocklist = Some(PathBuf::from(s)),
        Some(_) => problems.push(Problem::new(
            "logwatch.blocklist",
            "must be a path",
            "e.g. `blocklist: /var/lib/postern/attackers.txt`",
        )),
    }
    match m.get("rdns") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => out.rdns = Some(*b),
        Some(_) => problems.push(Problem::new("logwatch.rdns", "must be true or false", "e.g. `rdns: true`")),
    }
    out
}

pub(super) fn parse(r: &mut Reader<'_>, file: FromFile) -> LogwatchSettings {
    let files = r.get("POSTERN_LOGWATCH_FILES").map(paths).unwrap_or(file.files);
    let journal: Vec<String> = match r.get("POSTERN_LOGWATCH_JOURNAL") {
        Some(v) => v.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_string).collect(),
        None => file.journal,
    };
    for u in &journal {
        if u.starts_with('-') || u.chars().any(char::is_whitespace) {
            r.problems.push(Problem::new(
                "POSTERN_LOGWATCH_JOURNAL",
                format!("{u:?} is not a unit name"),
                "e.g. postfix@-.service,dovecot.service",
            ));
        }
    }
    let rules_path = r.get("POSTERN_LOGWATCH_RULES").map(PathBuf::from).or(file.rules);
    let geoip = r.get("POSTERN_LOGWATCH_GEOIP").map(paths).unwrap_or(file.geoip);
    let rdns_default = file.rdns.unwrap_or(false);
    let rdns = r.parse("POSTERN_LOGWATCH_RDNS", rdns_default, "true or false");
    let rdns_timeout = Duration::from_millis(r.ranged("POSTERN_LOGWATCH_RDNS_TIMEOUT_MS", 1000, 50, 10_000, "milliseconds"));
    let poll = Duration::from_secs(r.ranged("POSTERN_LOGWATCH_POLL_SECS", 5, 1, 300, "seconds"));
    for p in &files {
        if !p.is_absolute() {
            r.problems.push(Problem::new(
                "POSTERN_LOGWATCH_FILES",
                format!("{} is not an absolute path", p.display()),
                "name each log by its full path, e.g. /var/log/mail.log",
            ));
        }
    }
    let blocklist = r.get("POSTERN_LOGWATCH_BLOCKLIST").map(PathBuf::from).or(file.blocklist);
    if let Some(p) = &blocklist {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        if !p.is_absolute() {
            r.problems.push(Problem::new(
                "POSTERN_LOGWATCH_BLOCKLIST",
                format!("{} is not an absolute path", p.display()),
                "e.g. /var/lib/postern/attackers.txt",
            ));
        } else if !dir.is_some_and(|d| d.is_dir()) || p.is_dir() {
            r.problems.push(Problem::new(
                "POSTERN_LOGWATCH_BLOCKLIST",
                format!("{}: its folder must exist and the path must not be a folder", p.display()),
                "the file is replaced by a rename in the same folder, so Postern needs write access to that folder",
            ));
        }
    }
    for p in &geoip {
        if let Err(e) = std::fs::metadata(p) {
            r.problems.push(Problem::new(
                "POSTERN_LOGWATCH_GEOIP",
                format!("cannot read {}: {e}", p.display()),
                "point it at a downloaded GeoLite2 or DB-IP Lite .mmdb file, or leave it unset",
            ));
        }
    }
    let rules = match &rules_path {
        None => Rules::parse(DEFAULT).unwrap_or_else(|_| unreachable_rules()),
        Some(p) => match std::fs::read_to_string(p).map_err(|e| e.to_string()).and_then(|t| Rules::parse(&t)) {
            Ok(r) => r,
            Err(e) => {
                r.problems.push(Problem::new(
                    "POSTERN_LOGWATCH_RULES",
                    format!("{}: {e}", p.display()),
                    "start from the shipped rules/logwatch.toml",
                ));
                unreachable_rules()
            }
        },
    };
    LogwatchSettings {
        files,
        journal,
        journalctl: PathBuf::from("journalctl"),
        rules_path,
        rules,
        geoip,
        rdns,
        rdns_timeout,
        poll,
        blocklist,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn load(vars: &[(&str, &str)], yaml: &str) -> (LogwatchSettings, Vec<Problem>) {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut problems = Vec::new();
        let file = from_yaml(yaml, &mut problems);
        let s = parse(
            &mut Reader {
                vars: &vars,
                problems: &mut problems,
            },
            file,
        );
        (s, problems)
    }

    #[test]
    fn off_by_default_and_read_from_yaml_or_environment() {
        let (s, p) = load(&[], "accounts: []\n");
        assert!(s.files.is_empty() && p.is_empty());
        let (s, p) = load(
            &[],
            "logwatch:\n  files: [/var/log/mail.log, /var/log/dovecot.log]\n  journal: [dovecot.service]\n  rdns: true\n  blocklist: /tmp/attackers.txt\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.blocklist, Some(PathBuf::from("/tmp/attackers.txt")));
        assert_eq!(s.files.len(), 2);
        assert_eq!(s.journal, vec!["dovecot.service".to_string()]);
        assert!(s.rdns);
        let (s, _) = load(
            &[("POSTERN_LOGWATCH_FILES", "/srv/mail.log")],
            "logwatch:\n  files: /var/log/mail.log\n",
        );
        assert_eq!(s.files, vec![PathBuf::from("/srv/mail.log")], "the environment wins");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("lw.toml");
        std::fs::write(&rules, DEFAULT.replace("ip_failures = 10", "ip_failures = 0")).unwrap();
        let (_, p) = load(
            &[
                ("POSTERN_LOGWATCH_FILES", "mail.log"),
                ("POSTERN_LOGWATCH_RULES", rules.to_str().unwrap()),
                ("POSTERN_LOGWATCH_GEOIP", "/nonexistent/GeoLite2-ASN.mmdb"),
                ("POSTERN_LOGWATCH_POLL_SECS", "0"),
                ("POSTERN_LOGWATCH_JOURNAL", "--all"),
                ("POSTERN_LOGWATCH_BLOCKLIST", "/nonexistent-dir/attackers.txt"),
            ],
            "logwatch:\n  file: x\n  rdns: maybe\n",
        );
        let text = format!("{p:?}");
        for needle in [
            "logwatch.file",
            "logwatch.rdns",
            "not an absolute path",
            "thresholds.ip_failures",
            "GeoLite2-ASN.mmdb",
            "POSTERN_LOGWATCH_POLL_SECS",
            "not a unit name",
            "nonexistent-dir/attackers.txt: its folder must exist",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }
}
