//! Accounts and the built-in policy from `config.yaml`.
//!
//! The document is first read as a generic YAML tree, then each field is
//! converted on its own, so one bad field never hides the next one.

use super::problem::Problem;
use super::secret::looks_like_placeholder;
use crate::domain::{Mode, Verdict};
use serde::de::DeserializeOwned;
use serde_norway::{Mapping, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// How the IMAP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    Implicit,
    /// Plain connect, then `STARTTLS` (port 143).
    Starttls,
    /// No TLS; only allowed for loopback hosts.
    Plain,
}

/// Where a newly seen mailbox starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StartAt {
    /// Only mail that arrives after the first connect.
    New,
    /// Also scan (observe-only) mail from the last N days.
    Backfill {
        /// How many days of history to scan.
        days: u32,
    },
}

/// How often an account's owner gets a quarantine digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestFrequency {
    /// No digest.
    #[default]
    Never,
    /// Every day at `POSTERN_DIGEST_AT`.
    Daily,
    /// Mondays at `POSTERN_DIGEST_AT`.
    Weekly,
}

/// One IMAP account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountConfig {
    /// Unique name, used in the store and the logs.
    pub name: String,
    /// Server host name or IP.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub tls: TlsMode,
    /// Accept any certificate (dangerous; for lab servers only).
    pub tls_skip_verify: bool,
    /// Extra CA certificate(s) in PEM to trust, or the server's own
    /// (self-signed) certificate, which is then pinned.
    pub ca_file: Option<PathBuf>,
    /// Pins the server certificate by SHA-256 (`sha256:` + 64 hex digits,
    /// normalised); the chain is then not checked.
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
    /// Login name.
    pub user: String,
    /// Login password (resolved from `pass` or `pass_file`); empty for OAuth2 accounts.
    pub pass: String,
    /// OAuth2 instead of a password (`oauth2:`; issue 15).
    #[serde(default)]
    pub oauth2: Option<super::OAuthConfig>,
    /// Folders to watch.
    pub folders: Vec<String>,
    /// Where quarantined mail goes (created if missing).
    pub quarantine_folder: String,
    /// Where "deleted" mail is held (created if missing).
    pub hold_folder: String,
    /// Enforce or shadow.
    pub mode: Mode,
    /// Where a never-seen mailbox starts.
    pub start_at: StartAt,
    /// Quarantine digest frequency (`digest`, default never).
    #[serde(default)]
    pub digest: DigestFrequency,
    /// Where the digest goes (`digest_to`, default `user` when it is an address).
    #[serde(default)]
    pub digest_to: Option<String>,
    /// Where spam (the junk verdict) goes (`junk_folder`, default: the
    /// folder the server marks `\Junk`).
    #[serde(default)]
    pub junk_folder: JunkFolder,
    /// Keyword the flag verdict adds (`flag_keyword`, default `$Phishing`).
    #[serde(default)]
    pub flag_keyword: Option<String>,
    /// Learn from how the user files mail (`learn_from_folders`, default
    /// off; issue 17): mail moved into the Junk folder is learned as spam,
    /// mail moved back out of Junk or Quarantine as ham.
    #[serde(default)]
    pub learn_from_folders: bool,
    /// Learn once from the mail already there (`learn_bootstrap`, default
    /// off; issue 17): Junk as spam, old read mail as ham. Observe-only.
    #[serde(default)]
    pub learn_bootstrap: Option<BootstrapConfig>,
    /// The folder users drop phishing into (`report_folder`, default none,
    /// which is off; issue 17): watched like Junk, never flagged, every
    /// arrival re-scanned and queued for the operator.
    #[serde(default)]
    pub report_folder: Option<String>,
}

/// How the first-run bootstrap learns from existing mail (issue 17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BootstrapConfig {
    /// Read mail in a watched folder older than this many days is ham
    /// (`bootstrap_ham_days`, default 30): a user who read it long ago and
    /// kept it has judged it.
    pub ham_days: u32,
    /// Messages fetched and queued per minute (`bootstrap_per_minute`,
    /// default 120), so the first run does not load the IMAP server or the
    /// Rspamd controller.
    pub per_minute: u32,
}

/// `bootstrap_ham_days` unless set.
pub const DEFAULT_BOOTSTRAP_HAM_DAYS: u32 = 30;
/// `bootstrap_per_minute` unless set.
pub const DEFAULT_BOOTSTRAP_PER_MINUTE: u32 = 120;

/// The keyword the flag verdict adds unless `flag_keyword` says otherwise:
/// registered for exactly this (RFC 9051 §2.3.2 / IANA IMAP keywords), and
/// unlike `\Flagged` it never reads as "important" in mail clients.
pub const DEFAULT_FLAG_KEYWORD: &str = "$Phishing";

/// Where an account's spam goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JunkFolder {
    /// The folder the server advertises as SPECIAL-USE `\Junk` (RFC 6154);
    /// with none, spam only gets the `$Junk` keyword and stays in place.
    #[default]
    Auto,
    /// Never move spam: the `$Junk` keyword only.
    Off,
    /// This folder (created if missing).
    Folder(String),
}

impl AccountConfig {
    /// The digest recipient: `digest_to`, else the login when it is an address.
    pub fn digest_recipient(&self) -> Option<&str> {
        self.digest_to
            .as_deref()
            .or_else(|| self.user.contains('@').then_some(self.user.as_str()))
    }
}

/// The built-in decision policy: sender allow and block lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Sender patterns (`user@domain`, `@domain`, `*.domain`) that always pass.
    pub allow_senders: Vec<String>,
    /// Sender patterns that are acted on.
    pub block_senders: Vec<String>,
    /// What happens to blocked senders.
    pub block_verdict: Option<Verdict>,
}

struct Ctx<'a> {
    problems: &'a mut Vec<Problem>,
    base: &'a Path,
}

impl Ctx<'_> {
    fn field<T: DeserializeOwned>(&mut self, map: &Mapping, key: &str, path: &str, hint: &str) -> Option<T> {
        let v = map.get(key)?;
        if v.is_null() {
            return None;
        }
        match serde_norway::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problems.push(Problem::new(
                    format!("{path}.{key}"),
                    super::suggest::invalid_value(&e.to_string()),
                    hint,
                ));
                None
            }
        }
    }

    fn required<T: DeserializeOwned>(&mut self, map: &Mapping, key: &str, path: &str, hint: &str) -> Option<T> {
        if map.get(key).is_none_or(Value::is_null) {
            self.problems.push(Problem::new(format!("{path}.{key}"), "is required", hint));
            return None;
        }
        self.field(map, key, path, hint)
    }
}

/// The top-level keys of config.yaml.
const TOP_KEYS: &[&str] = &["accounts", "policy", "logwatch"];
/// The keys of `policy:`.
const POLICY_KEYS: &[&str] = &["allow_senders", "block_senders", "block_verdict"];

const ACCOUNT_KEYS: &[&str] = &[
    "name",
    "host",
    "port",
    "tls",
    "tls_skip_verify",
    "ca_file",
    "tls_fingerprint",
    "user",
    "pass",
    "pass_file",
    "folders",
    "quarantine_folder",
    "hold_folder",
    "mode",
    "start_at",
    "backfill_days",
    "digest",
    "digest_to",
    "oauth2",
    "junk_folder",
    "flag_keyword",
    "learn_from_folders",
    "learn_bootstrap",
    "bootstrap_ham_days",
    "bootstrap_per_minute",
    "report_folder",
];

/// Parses one account given as a YAML mapping (the dashboard's account form
/// goes through here, so it gets exactly the checks config.yaml gets).
pub fn parse_account_value(item: &Value, base: &Path, problems: &mut Vec<Problem>) -> Option<AccountConfig> {
    let mut ctx = Ctx { problems, base };
    parse_account(&mut ctx, item, "account")
}

/// Parses config.yaml text. Relative `pass_file`/`ca_file` paths are resolved
/// against `base` (the config file's folder).
pub fn parse_accounts(text: &str, base: &Path, problems: &mut Vec<Problem>) -> (Vec<AccountConfig>, PolicyConfig) {
    let doc: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let at = e
                .location()
                .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                .unwrap_or_default();
            problems.push(Problem::new(
                "config.yaml",
                format!("is not valid YAML{at}: {e}"),
                "check indentation and quoting",
            ));
            return (Vec::new(), PolicyConfig::default());
        }
    };
    let mut ctx = Ctx { problems, base };
    let Some(root) = doc.as_mapping() else {
        ctx.problems
            .push(Problem::new("config.yaml", "top level must be a mapping", "start with `accounts:`"));
        return (Vec::new(), PolicyConfig::default());
    };
    for k in root.keys() {
        let k = k.as_str().unwrap_or("?");
        if !TOP_KEYS.contains(&k) {
            ctx.problems.push(Problem::new(
                k,
                "unknown top-level key",
                super::suggest::unknown_key_hint(k, TOP_KEYS),
            ));
        }
    }
    let mut accounts = Vec::new();
    match root.get("accounts") {
        None | Some(Value::Null) => ctx.problems.push(Problem::new(
            "accounts",
            "no accounts are configured",
            "add at least one entry under `accounts:` (see packaging/config/config.yaml)",
        )),
        Some(Value::Sequence(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(a) = parse_account(&mut ctx, item, &format!("accounts[{i}]")) {
                    accounts.push(a);
                }
            }
        }
        Some(_) => ctx.problems.push(Problem::new(
            "accounts",
            "must be a list",
            "write `accounts:` followed by `- name: ...` items",
        )),
    }
    let mut names = BTreeSet::new();
    for (i, a) in accounts.iter().enumerate() {
        if !names.insert(a.name.clone()) {
            ctx.problems.push(Problem::new(
                format!("accounts[{i}].name"),
                format!("duplicate account name {:?}", a.name),
                "names must be unique",
            ));
        }
    }
    let policy = match root.get("policy") {
        Some(Value::Mapping(m)) => parse_policy(&mut ctx, m),
        None | Some(Value::Null) => PolicyConfig::default(),
        Some(_) => {
            ctx.problems.push(Problem::new(
                "policy",
                "must be a mapping",
                "e.g. `policy: {block_senders: [\"@spam.example\"]}`",
            ));
            PolicyConfig::default()
        }
    };
    (accounts, policy)
}

fn parse_account(ctx: &mut Ctx<'_>, item: &Value, path: &str) -> Option<AccountConfig> {
    let Some(m) = item.as_mapping() else {
        ctx.problems.push(Problem::new(
            path,
            "must be a mapping",
            "each account is `- name: ...` with host, user, ...",
        ));
        return None;
    };
    for k in m.keys() {
        let k = k.as_str().unwrap_or("?");
        if !ACCOUNT_KEYS.contains(&k) {
            ctx.problems.push(Problem::new(
                format!("{path}.{k}"),
                "unknown key",
                super::suggest::unknown_key_hint(k, ACCOUNT_KEYS),
            ));
        }
    }
    let before = ctx.problems.len();
    let name: Option<String> = ctx.required(m, "name", path, "a short unique name such as `alice`");
    if let Some(n) = &name
        && (n.is_empty()
            || n.len() > 64
            || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
            // The name becomes a folder under the EML store and a URL path
            // segment: `.`, `..` and other dot-led names are refused (issue 16).
            || !n.starts_with(|c: char| c.is_ascii_alphanumeric()))
    {
        ctx.problems.push(Problem::new(
            format!("{path}.name"),
            format!("{n:?} is not a valid name"),
            "use 1-64 letters, digits, - _ . @, starting with a letter or digit",
        ));
    }
    let host: Option<String> = ctx.required(m, "host", path, "the IMAP server, e.g. imap.example.org");
    let tls: TlsMode = ctx
        .field(m, "tls", path, "one of implicit, starttls, plain")
        .unwrap_or(TlsMode::Implicit);
    let port: u16 = ctx
        .field(m, "port", path, "a TCP port such as 993")
        .unwrap_or(if tls == TlsMode::Implicit { 993 } else { 143 });
    if port == 0 {
        ctx.problems.push(Problem::new(
            format!("{path}.port"),
            "port 0 is invalid",
            "use 993 for implicit TLS or 143 for STARTTLS",
        ));
    }
    if let (TlsMode::Plain, Some(h)) = (tls, &host)
        && !is_loopback(h)
    {
        ctx.problems.push(Problem::new(
            format!("{path}.tls"),
            format!("plain IMAP to {h} would send the password in clear text"),
            "use `tls: implicit` or `tls: starttls`; plain is allowed only for loopback hosts",
        ));
    }
    let tls_skip_verify = ctx.field(m, "tls_skip_verify", path, "true or false").unwrap_or(false);
    let ca_file: Option<PathBuf> = ctx
        .field::<PathBuf>(m, "ca_file", path, "path to a PEM file")
        .map(|p| ctx.base.join(p));
    if let Some(ca) = &ca_file
        && !ca.is_file()
    {
        ctx.problems.push(Problem::new(
            format!("{path}.ca_file"),
            format!("{} does not exist", ca.display()),
            "point it at a PEM CA certificate",
        ));
    }
    let tls_fingerprint = parse_tls_fingerprint(ctx, m, path, tls, tls_skip_verify);
    let user: Option<String> = ctx.required(m, "user", path, "the IMAP login name");
    // An OAuth2 account logs in with tokens: a password beside it is a mistake.
    let oauth2 = match m.get("oauth2") {
        None | Some(Value::Null) => None,
        Some(v) => {
            if m.contains_key("pass") || m.contains_key("pass_file") {
                ctx.problems.push(Problem::new(
                    format!("{path}.pass"),
                    "an OAuth2 account has no password",
                    "remove pass/pass_file, or the oauth2 block",
                ));
            }
            let before = ctx.problems.len();
            let o = super::oauth::parse_oauth(v, path, ctx.base, ctx.problems);
            if o.is_none() && ctx.problems.len() == before {
                ctx.problems.push(Problem::new(
                    format!("{path}.oauth2"),
                    "is incomplete",
                    "see the README's Gmail and Microsoft 365 section",
                ));
            }
            o
        }
    };
    let pass = if m.contains_key("oauth2") {
        Some(String::new())
    } else {
        resolve_pass(ctx, m, path)
    };
    let folders: Vec<String> = ctx
        .field(m, "folders", path, "a list such as [INBOX, Work]")
        .unwrap_or_else(|| vec!["INBOX".into()]);
    let mut seen = BTreeSet::new();
    for f in &folders {
        if !seen.insert(f.to_ascii_lowercase()) {
            ctx.problems.push(Problem::new(
                format!("{path}.folders"),
                format!("{f:?} is listed twice"),
                "list each folder once",
            ));
        }
    }
    if folders.is_empty() {
        ctx.problems.push(Problem::new(
            format!("{path}.folders"),
            "is empty",
            "list at least one folder, e.g. [INBOX]",
        ));
    }
    let quarantine_folder: String = ctx
        .field(m, "quarantine_folder", path, "a folder name")
        .unwrap_or_else(|| "Quarantine".into());
    let hold_folder: String = ctx
        .field(m, "hold_folder", path, "a folder name")
        .unwrap_or_else(|| "Postern-Held".into());
    for (key, f) in [("quarantine_folder", &quarantine_folder), ("hold_folder", &hold_folder)] {
        if folders.iter().any(|w| w.eq_ignore_ascii_case(f)) {
            ctx.problems.push(Problem::new(
                format!("{path}.{key}"),
                format!("{f:?} is also a watched folder"),
                "Postern would rescan what it moved; pick another folder",
            ));
        }
        if f.is_empty() || f.contains(['\r', '\n', '\0', '*', '%']) {
            ctx.problems.push(Problem::new(
                format!("{path}.{key}"),
                format!("{f:?} is not a usable folder name"),
                "avoid wildcards and line breaks",
            ));
        }
    }
    let mode: Mode = ctx.field(m, "mode", path, "`enforce` or `shadow`").unwrap_or_default();
    let start_at = parse_start_at(ctx, m, path);
    let digest: DigestFrequency = ctx.field(m, "digest", path, "`never`, `daily` or `weekly`").unwrap_or_default();
    let digest_to: Option<String> = ctx.field(m, "digest_to", path, "an email address");
    if let Some(t) = &digest_to
        && t.parse::<lettre::Address>().is_err()
    {
        ctx.problems.push(Problem::new(
            format!("{path}.digest_to"),
            format!("{t:?} is not an email address"),
            "e.g. alice@example.org",
        ));
    }
    if digest != DigestFrequency::Never && digest_to.is_none() && user.as_deref().is_some_and(|u| !u.contains('@')) {
        ctx.problems.push(Problem::new(
            format!("{path}.digest_to"),
            "is required when the login is not an email address",
            "set digest_to to the mailbox owner's address",
        ));
    }
    let junk_folder = parse_junk_folder(ctx, m, path, &folders);
    let flag_keyword: Option<String> = ctx.field(m, "flag_keyword", path, "an IMAP keyword such as $Phishing");
    if let Some(k) = &flag_keyword
        && !is_keyword(k)
    {
        ctx.problems.push(Problem::new(
            format!("{path}.flag_keyword"),
            format!("{k:?} is not an IMAP keyword"),
            "letters, digits and $ _ - . only, no backslash (system flags such as \\Flagged are not allowed)",
        ));
    }
    let learn_from_folders = ctx.field(m, "learn_from_folders", path, "true or false").unwrap_or(false);
    let learn_bootstrap = parse_bootstrap(ctx, m, path);
    let report_folder: Option<String> = ctx.field(m, "report_folder", path, "a folder name such as Report Phishing");
    if let Some(f) = &report_folder
        && (f.is_empty()
            || f.contains(['\r', '\n', '\0', '*', '%'])
            || [&quarantine_folder, &hold_folder]
                .into_iter()
                .chain(&folders)
                .any(|w| w.eq_ignore_ascii_case(f)))
    {
        ctx.problems.push(Problem::new(
            format!("{path}.report_folder"),
            format!("{f:?} cannot be the report folder"),
            "pick a folder of its own (not watched, not the quarantine or hold folder), e.g. Report Phishing",
        ));
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(AccountConfig {
        name: name?,
        host: host?,
        port,
        tls,
        tls_skip_verify,
        ca_file,
        tls_fingerprint,
        user: user?,
        pass: pass?,
        oauth2,
        folders,
        quarantine_folder,
        hold_folder,
        mode,
        start_at,
        digest,
        digest_to,
        junk_folder,
        flag_keyword,
        learn_from_folders,
        learn_bootstrap,
        report_folder,
    })
}

/// `learn_bootstrap: true` with its `bootstrap_ham_days` and
/// `bootstrap_per_minute`; the two tuning keys alone are a mistake.
fn parse_bootstrap(ctx: &mut Ctx<'_>, m: &Mapping, path: &str) -> Option<BootstrapConfig> {
    let on = ctx.field(m, "learn_bootstrap", path, "true or false").unwrap_or(false);
    let ham_days: Option<u32> = ctx.field(m, "bootstrap_ham_days", path, "a number of days, e.g. 30");
    let per_minute: Option<u32> = ctx.field(m, "bootstrap_per_minute", path, "messages per minute, e.g. 120");
    if per_minute == Some(0) {
        ctx.problems.push(Problem::new(
            format!("{path}.bootstrap_per_minute"),
            "must be at least 1",
            "messages per minute, e.g. 120",
        ));
    }
    if !on && (ham_days.is_some() || per_minute.is_some()) {
        ctx.problems.push(Problem::new(
            format!("{path}.learn_bootstrap"),
            "bootstrap_ham_days and bootstrap_per_minute only apply with learn_bootstrap: true",
            "add learn_bootstrap: true, or remove them",
        ));
    }
    on.then(|| BootstrapConfig {
        ham_days: ham_days.unwrap_or(DEFAULT_BOOTSTRAP_HAM_DAYS),
        per_minute: per_minute.unwrap_or(DEFAULT_BOOTSTRAP_PER_MINUTE).max(1),
    })
}

/// `junk_folder`: `auto` (default), `off` (or `false`), or a folder name.
fn parse_junk_folder(ctx: &mut Ctx<'_>, m: &Mapping, path: &str, watched: &[String]) -> JunkFolder {
    let key = format!("{path}.junk_folder");
    let name = match m.get("junk_folder") {
        None | Some(Value::Null) => return JunkFolder::Auto,
        Some(Value::Bool(false)) => return JunkFolder::Off,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("auto") => return JunkFolder::Auto,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("off") => return JunkFolder::Off,
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            ctx.problems
                .push(Problem::new(key, "invalid value", "`auto`, `off` or a folder name such as Junk"));
            return JunkFolder::Auto;
        }
    };
    if watched.iter().any(|w| w.eq_ignore_ascii_case(&name)) {
        ctx.problems.push(Problem::new(
            key,
            format!("{name:?} is also a watched folder"),
            "Postern would rescan what it moved; pick another folder",
        ));
    } else if name.is_empty() || name.contains(['\r', '\n', '"', '*', '%']) {
        ctx.problems.push(Problem::new(
            key,
            format!("{name:?} is not a usable folder name"),
            "avoid quotes, wildcards and line breaks",
        ));
    }
    JunkFolder::Folder(name)
}

/// An IMAP flag keyword (RFC 3501 `atom`, no `\`): what `flag_keyword` may be.
pub fn is_keyword(k: &str) -> bool {
    !k.is_empty() && k.len() <= 64 && k.chars().all(|c| c.is_ascii_alphanumeric() || "$_-.".contains(c))
}

/// `tls_fingerprint`, normalised to `sha256:` and lowercase hex.
fn parse_tls_fingerprint(ctx: &mut Ctx<'_>, m: &Mapping, path: &str, tls: TlsMode, skip: bool) -> Option<String> {
    let hint = "the output of `openssl x509 -noout -fingerprint -sha256 -in cert.pem`, e.g. sha256:AB:CD:…";
    let raw: String = ctx.field(m, "tls_fingerprint", path, hint)?;
    let Some(bytes) = crate::imap::parse_fingerprint(&raw) else {
        ctx.problems.push(Problem::new(
            format!("{path}.tls_fingerprint"),
            format!("{raw:?} is not a SHA-256 fingerprint (64 hex digits)"),
            hint,
        ));
        return None;
    };
    if tls == TlsMode::Plain || skip {
        ctx.problems.push(Problem::new(
            format!("{path}.tls_fingerprint"),
            "has no effect without certificate verification",
            "use `tls: implicit` or `tls: starttls`, and drop tls_skip_verify",
        ));
    }
    Some(format!("sha256:{}", hex::encode(bytes)))
}

fn resolve_pass(ctx: &mut Ctx<'_>, m: &Mapping, path: &str) -> Option<String> {
    let inline: Option<String> = ctx.field(m, "pass", path, "a string");
    let file: Option<PathBuf> = ctx.field(m, "pass_file", path, "a path");
    let (pass, key) = match (inline, file) {
        (Some(_), Some(_)) => {
            ctx.problems.push(Problem::new(
                format!("{path}.pass"),
                "both pass and pass_file are set",
                "keep only one of them",
            ));
            return None;
        }
        (Some(p), None) => (p, "pass"),
        (None, Some(f)) => {
            let f = ctx.base.join(f);
            match std::fs::read_to_string(&f) {
                Ok(s) => (s.trim_end_matches(['\r', '\n']).to_string(), "pass_file"),
                Err(e) => {
                    ctx.problems.push(Problem::new(
                        format!("{path}.pass_file"),
                        format!("cannot read {}: {e}", f.display()),
                        "create the file (mode 0600) holding only the password",
                    ));
                    return None;
                }
            }
        }
        (None, None) => {
            ctx.problems.push(Problem::new(
                format!("{path}.pass"),
                "no password given",
                "set `pass_file: /etc/postern/<name>.pass` (preferred) or `pass`",
            ));
            return None;
        }
    };
    if looks_like_placeholder(&pass) {
        ctx.problems.push(Problem::new(
            format!("{path}.{key}"),
            "looks like a placeholder, not a real password",
            "put the account's real IMAP password here",
        ));
        return None;
    }
    Some(pass)
}

fn parse_start_at(ctx: &mut Ctx<'_>, m: &Mapping, path: &str) -> StartAt {
    let start: Option<String> = ctx.field(m, "start_at", path, "`new` or `backfill`");
    let days: Option<u32> = ctx.field(m, "backfill_days", path, "a number of days, e.g. 7");
    match (start.as_deref(), days) {
        (None | Some("new"), None) => StartAt::New,
        (None | Some("backfill"), Some(d)) if (1..=3650).contains(&d) => StartAt::Backfill { days: d },
        (_, Some(d)) if !(1..=3650).contains(&d) => {
            ctx.problems.push(Problem::new(
                format!("{path}.backfill_days"),
                format!("{d} is out of range"),
                "use 1 to 3650",
            ));
            StartAt::New
        }
        (Some("new"), Some(_)) => {
            ctx.problems.push(Problem::new(
                format!("{path}.start_at"),
                "`new` conflicts with backfill_days",
                "remove backfill_days or set start_at: backfill",
            ));
            StartAt::New
        }
        (Some("backfill"), None) => {
            ctx.problems.push(Problem::new(
                format!("{path}.backfill_days"),
                "is required with start_at: backfill",
                "e.g. backfill_days: 7",
            ));
            StartAt::New
        }
        (Some(other), _) => {
            ctx.problems.push(Problem::new(
                format!("{path}.start_at"),
                format!("unknown value {other:?}"),
                "use `new` or `backfill`",
            ));
            StartAt::New
        }
        (None, Some(_)) => StartAt::New,
    }
}

fn parse_policy(ctx: &mut Ctx<'_>, m: &Mapping) -> PolicyConfig {
    for k in m.keys() {
        let k = k.as_str().unwrap_or("?");
        if !POLICY_KEYS.contains(&k) {
            ctx.problems.push(Problem::new(
                format!("policy.{k}"),
                "unknown key",
                super::suggest::unknown_key_hint(k, POLICY_KEYS),
            ));
        }
    }
    let mut list = |key: &str| -> Vec<String> {
        let items: Vec<String> = ctx.field(m, key, "policy", "a list of addresses or @domains").unwrap_or_default();
        for (i, s) in items.iter().enumerate() {
            if !s.contains('@') && !s.starts_with("*.") {
                ctx.problems.push(Problem::new(
                    format!("policy.{key}[{i}]"),
                    format!("{s:?} is not an address pattern"),
                    "use user@domain, @domain or *.domain",
                ));
            }
        }
        items.into_iter().map(|s| s.to_ascii_lowercase()).collect()
    };
    let allow_senders = list("allow_senders");
    let block_senders = list("block_senders");
    let block_verdict: Option<Verdict> = ctx.field(m, "block_verdict", "policy", "one of flag, junk, quarantine, delete");
    if block_verdict == Some(Verdict::Pass) {
        ctx.problems.push(Problem::new(
            "policy.block_verdict",
            "`pass` would make the block list do nothing",
            "use flag, junk, quarantine or delete",
        ));
    }
    PolicyConfig {
        allow_senders,
        block_senders,
        block_verdict,
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> (Vec<AccountConfig>, PolicyConfig, Vec<Problem>) {
        let mut p = Vec::new();
        let (a, pol) = parse_accounts(y, Path::new("/nonexistent"), &mut p);
        (a, pol, p)
    }

    #[test]
    fn minimal_account_gets_defaults() {
        let (a, _, p) = parse("accounts:\n  - {name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw}\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(a[0].port, 993);
        assert_eq!(a[0].tls, TlsMode::Implicit);
        assert_eq!(a[0].folders, vec!["INBOX"]);
        assert_eq!(a[0].quarantine_folder, "Quarantine");
        assert_eq!(a[0].mode, Mode::Enforce);
        assert_eq!(a[0].start_at, StartAt::New);
    }

    #[test]
    fn issue_17_learn_from_folders_is_opt_in() {
        let one = |extra: &str| {
            parse(&format!(
                "accounts:\n  - {{name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw{extra}}}\n"
            ))
        };
        let (a, _, p) = one("");
        assert!(p.is_empty(), "{p:?}");
        assert!(!a[0].learn_from_folders, "off unless asked for");
        let (a, _, p) = one(", learn_from_folders: true");
        assert!(p.is_empty(), "{p:?}");
        assert!(a[0].learn_from_folders);
        let (a, _, p) = one(", learn_from_folders: sometimes");
        assert!(
            a.is_empty() && p.iter().any(|p| p.to_string().contains("learn_from_folders")),
            "{p:?}"
        );
    }

    #[test]
    fn issue_17_learn_bootstrap_is_opt_in_with_defaults() {
        let one = |extra: &str| {
            parse(&format!(
                "accounts:\n  - {{name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw{extra}}}\n"
            ))
        };
        let (a, _, p) = one("");
        assert!(p.is_empty() && a[0].learn_bootstrap.is_none(), "off unless asked for: {p:?}");
        let (a, _, p) = one(", learn_bootstrap: true");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            a[0].learn_bootstrap,
            Some(BootstrapConfig {
                ham_days: DEFAULT_BOOTSTRAP_HAM_DAYS,
                per_minute: DEFAULT_BOOTSTRAP_PER_MINUTE
            })
        );
        let (a, _, p) = one(", learn_bootstrap: true, bootstrap_ham_days: 7, bootstrap_per_minute: 600");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            a[0].learn_bootstrap,
            Some(BootstrapConfig {
                ham_days: 7,
                per_minute: 600
            })
        );
        for bad in [", bootstrap_ham_days: 7", ", learn_bootstrap: true, bootstrap_per_minute: 0"] {
            let (a, _, p) = one(bad);
            assert!(
                a.is_empty() && p.iter().any(|p| p.to_string().contains("bootstrap")),
                "{bad}: {p:?}"
            );
        }
    }

    #[test]
    fn issue_17_the_report_folder_is_off_unless_set_and_a_folder_of_its_own() {
        let one = |extra: &str| {
            parse(&format!(
                "accounts:\n  - {{name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw{extra}}}\n"
            ))
        };
        let (a, _, p) = one("");
        assert!(p.is_empty() && a[0].report_folder.is_none(), "off unless set: {p:?}");
        let (a, _, p) = one(", report_folder: Report Phishing");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(a[0].report_folder.as_deref(), Some("Report Phishing"));
        for bad in [", report_folder: inbox", ", report_folder: Quarantine", ", report_folder: \"Re*\""] {
            let (a, _, p) = one(bad);
            assert!(
                a.is_empty() && p.iter().any(|p| p.to_string().contains("report_folder")),
                "{bad}: {p:?}"
            );
        }
    }

    #[test]
    fn issue_14_junk_folder_and_flag_keyword() {
        let one = |extra: &str| {
            parse(&format!(
                "accounts:\n  - {{name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw{extra}}}\npolicy: {{block_verdict: junk}}\n"
            ))
        };
        let (a, pol, p) = one("");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(a[0].junk_folder, JunkFolder::Auto);
        assert_eq!(a[0].flag_keyword, None);
        assert_eq!(pol.block_verdict, Some(Verdict::Junk));
        for (v, want) in [
            ("off", JunkFolder::Off),
            ("false", JunkFolder::Off),
            ("auto", JunkFolder::Auto),
            ("Spam", JunkFolder::Folder("Spam".into())),
        ] {
            let (a, _, p) = one(&format!(", junk_folder: {v}"));
            assert!(p.is_empty(), "{v}: {p:?}");
            assert_eq!(a[0].junk_folder, want, "{v}");
        }
        let (a, _, p) = one(", flag_keyword: $Suspicious");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(a[0].flag_keyword.as_deref(), Some("$Suspicious"));
        for bad in [
            ", junk_folder: INBOX",
            ", junk_folder: \"a*\"",
            ", flag_keyword: \"\\\\Flagged\"",
            ", flag_keyword: \"two words\"",
        ] {
            let (a, _, p) = one(bad);
            assert!(a.is_empty() && !p.is_empty(), "{bad} accepted");
        }
    }

    /// Issue 16: `.` and `..` were accepted as account names.
    #[test]
    fn issue_16_dot_names_are_refused() {
        for bad in [".", "..", ".hidden", "-x", "@x"] {
            let (_, _, p) = parse(&format!(
                "accounts:\n  - {{name: \"{bad}\", host: imap.example.org, user: u, pass: s3cr3t-Pw}}\n"
            ));
            assert!(p.iter().any(|p| p.path.ends_with(".name")), "{bad}: {p:?}");
        }
        let (_, _, p) = parse("accounts:\n  - {name: alice.work, host: imap.example.org, user: u, pass: s3cr3t-Pw}\n");
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn all_problems_are_reported_with_paths() {
        let y = r#"
accounts:
  - name: a
    host: mail.example.org
    tls: plain
    port: notaport
    user: u
    pass: changeme
    mode: yolo
    colour: blue
  - name: a
    host: h
    user: u
    pass_file: /nonexistent/pw
    folders: [INBOX]
    quarantine_folder: INBOX
policy:
  block_senders: [nobody]
"#;
        let (_, _, p) = parse(y);
        let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "accounts[0].tls",
            "accounts[0].port",
            "accounts[0].pass",
            "accounts[0].mode",
            "accounts[0].colour",
            "accounts[1].pass_file",
            "accounts[1].quarantine_folder",
            "policy.block_senders[0]",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
    }

    #[test]
    fn issue_22_problems_say_invalid_value_once_and_guess_typos() {
        let (_, _, p) = parse(
            "accounts:\n  - {name: a, host: h.example, port: 99999, user: u, pass: s3cr3t-Pw, hots: x}\npolicy: {block_sender: []}\nacounts: []\n",
        );
        let port = p.iter().find(|p| p.path == "accounts[0].port").expect("port problem");
        assert!(port.message.starts_with("invalid value:"), "{port:?}");
        assert!(!port.message.contains("invalid value: invalid value"), "{port:?}");
        let hint = |path: &str| p.iter().find(|p| p.path == path).map(|p| p.hint.clone()).unwrap_or_default();
        assert!(hint("accounts[0].hots").starts_with("did you mean `host`?"), "{p:?}");
        assert!(hint("policy.block_sender").starts_with("did you mean `block_senders`?"), "{p:?}");
        assert!(hint("acounts").starts_with("did you mean `accounts`?"), "{p:?}");
    }

    #[test]
    fn plain_is_fine_on_loopback_and_backfill_parses() {
        let (a, _, p) = parse("accounts:\n  - {name: a, host: 127.0.0.1, tls: plain, port: 143, user: u, pass: pw-1x, backfill_days: 3}\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(a[0].start_at, StartAt::Backfill { days: 3 });
    }

    /// Issue 15, defect 7: a self-signed certificate can be pinned by its
    /// SHA-256, in the forms openssl prints it.
    #[test]
    fn issue15_tls_fingerprint_is_normalised_and_checked() {
        let hex = "4149c5ba09ac82f4df441628be2b9ae838130cf603940eda4b097a009831fdf9";
        let colons: Vec<String> = hex
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).to_uppercase())
            .collect();
        for given in [format!("sha256:{hex}"), format!("SHA256:{}", colons.join(":")), colons.join(":")] {
            let (a, _, p) = parse(&format!(
                "accounts:\n  - {{name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw, tls_fingerprint: \"{given}\"}}\n"
            ));
            assert!(p.is_empty(), "{given}: {p:?}");
            assert_eq!(a[0].tls_fingerprint.as_deref(), Some(format!("sha256:{hex}").as_str()));
        }
        for (bad, why) in [
            ("tls_fingerprint: \"sha256:abcd\"", "not a SHA-256"),
            ("tls_fingerprint: \"md5:{hex}\"", "not a SHA-256"),
            ("tls_fingerprint: \"sha256:{hex}\", tls_skip_verify: true", "no effect"),
        ] {
            let bad = bad.replace("{hex}", hex);
            let (_, _, p) = parse(&format!(
                "accounts:\n  - {{name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw, {bad}}}\n"
            ));
            assert!(
                p.iter().any(|p| p.path == "accounts[0].tls_fingerprint" && p.message.contains(why)),
                "{bad}: {p:?}"
            );
        }
    }

    /// Issue 15, defect 4: every argument is quoted now, so quotes and
    /// backslashes are fine in a folder name; wildcards and breaks are not.
    #[test]
    fn issue15_folder_names_may_hold_quotes_but_not_wildcards() {
        let (_, _, p) =
            parse("accounts:\n  - {name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw, quarantine_folder: 'Spam \"x\" \\\\ y'}\n");
        assert!(p.is_empty(), "{p:?}");
        let (_, _, p) = parse("accounts:\n  - {name: a, host: imap.example.org, user: u, pass: s3cr3t-Pw, hold_folder: 'Held*'}\n");
        assert!(p.iter().any(|p| p.path == "accounts[0].hold_folder"), "{p:?}");
    }

    #[test]
    fn broken_yaml_is_one_clear_problem() {
        let (_, _, p) = parse("accounts: [\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("not valid YAML"));
    }
}
