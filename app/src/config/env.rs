//! Global settings from `POSTERN_*` environment variables.

use super::problem::Problem;
use super::secret::{decode_key, looks_like_placeholder};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-friendly.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Process-wide settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Dashboard listen address (`POSTERN_LISTEN`).
    pub listen: SocketAddr,
    /// State directory (`POSTERN_DATA_DIR`).
    pub data_dir: PathBuf,
    /// SQLite database (`POSTERN_DB_PATH`, default `<data_dir>/postern.db`).
    pub db_path: PathBuf,
    /// Where raw EML copies are kept (`<data_dir>/eml`).
    pub eml_dir: PathBuf,
    /// Accounts file (`POSTERN_CONFIG`).
    pub config_path: PathBuf,
    /// AES-256-GCM key for secrets at rest (`POSTERN_DB_ENCRYPTION_KEY`).
    pub db_key: [u8; 32],
    /// Admin bcrypt hash for the dashboard (`POSTERN_ADMIN_PASSWORD_HASH`).
    pub admin_password_hash: Option<String>,
    /// Scanner endpoints and behaviour.
    pub scan: ScanSettings,
    /// Overrides the policy's flag threshold (`POSTERN_THRESHOLD_FLAG`).
    pub threshold_flag: Option<f64>,
    /// Overrides the policy's quarantine threshold (`POSTERN_THRESHOLD_QUARANTINE`).
    pub threshold_quarantine: Option<f64>,
    /// IMAP tuning shared by all accounts.
    pub imap: ImapTuning,
    /// Log format (`POSTERN_LOG_FORMAT`: pretty|json).
    pub log_format: LogFormat,
    /// Dashboard and API behaviour.
    pub web: WebSettings,
    /// Feeds, reputation services and claw-back.
    pub intel: super::IntelSettings,
    /// Maintenance, notifications and digests.
    pub background: super::BackgroundSettings,
    /// In-line mode: the milter (issue 19).
    pub milter: super::MilterSettings,
    /// Mail-server log watch (read with config.yaml by `Config::load`).
    pub logwatch: super::LogwatchSettings,
}

/// Dashboard, session and endpoint-gating settings.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Drop the `Secure` cookie attribute, for plain-HTTP labs (`POSTERN_INSECURE_COOKIES`).
    pub insecure_cookies: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`POSTERN_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Who may read `/metrics` (`POSTERN_METRICS_ALLOW`, default loopback).
    pub metrics_allow: Vec<ipnet::IpNet>,
    /// Who may call `/api/scan` (`POSTERN_SCAN_API_ALLOW`, default loopback).
    pub scan_api_allow: Vec<ipnet::IpNet>,
    /// A session ends after this long without a request (`POSTERN_SESSION_IDLE_MINS`, default 30).
    pub session_idle: Duration,
    /// A session ends this long after login whatever happens (`POSTERN_SESSION_MAX_HOURS`, default 12).
    pub session_max: Duration,
    /// Failed logins from one IP before it is locked out (`POSTERN_LOGIN_MAX_FAILURES`, default 5).
    pub login_max_failures: u32,
    /// How long a lockout lasts (`POSTERN_LOGIN_LOCKOUT_MINS`, default 15).
    pub login_lockout: Duration,
    /// Login attempts from all clients together per lockout window before
    /// every login is refused (`POSTERN_LOGIN_MAX_ATTEMPTS_GLOBAL`, default 100).
    pub login_max_global: u32,
    /// `Host` values the dashboard answers to (`POSTERN_ALLOWED_HOSTS`,
    /// comma-separated `host[:port]`); empty means the host of
    /// `POSTERN_PUBLIC_URL` and the listen address.
    pub allowed_hosts: Vec<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            insecure_cookies: false,
            trusted_proxies: Vec::new(),
            metrics_allow: loopback(),
            scan_api_allow: loopback(),
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            login_max_failures: 5,
            login_lockout: Duration::from_secs(15 * 60),
            login_max_global: 100,
            allowed_hosts: Vec::new(),
        }
    }
}

fn loopback() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"].iter().filter_map(|c| c.parse().ok()).collect()
}

/// Scanner endpoints, deadlines and fail modes.
#[derive(Debug, Clone, Default)]
pub struct ScanSettings {
    /// The executable that reads PDF attachments in a child process under
    /// kernel limits (not a variable: `postern` sets its own binary).
    pub pdf_worker: Option<std::sync::Arc<std::path::Path>>,
    /// Rspamd base URL (`POSTERN_RSPAMD_URL`); unset disables the scanner.
    pub rspamd_url: Option<String>,
    /// Rspamd deadline (`POSTERN_RSPAMD_TIMEOUT_SECS`, default 20).
    pub rspamd_timeout: Duration,
    /// Quarantine when Rspamd fails (`POSTERN_RSPAMD_CRITICAL`, default true).
    pub rspamd_critical: bool,
    /// clamd `host:port` (`POSTERN_CLAMD_ADDR`); unset disables the scanner.
    pub clamd_addr: Option<String>,
    /// clamd deadline (`POSTERN_CLAMD_TIMEOUT_SECS`, default 30).
    pub clamd_timeout: Duration,
    /// Quarantine when clamd fails (`POSTERN_CLAMD_CRITICAL`, default true).
    pub clamd_critical: bool,
    /// Bytes sent to clamd at most; keep ≤ its StreamMaxLength (`POSTERN_CLAMD_STREAM_MAX`, default 25 MiB).
    pub clamd_stream_max: usize,
    /// Extra protected domains for spoofing checks (`POSTERN_PROTECTED_DOMAINS`, comma-separated).
    pub protected_domains: Vec<String>,
    /// The authserv-id whose Authentication-Results are trusted (`POSTERN_AUTHSERV_ID`).
    pub authserv_id: Option<String>,
    /// Verdict policy file (`POSTERN_POLICY`); default: the shipped rules/policy.toml.
    pub policy_path: Option<PathBuf>,
    /// YARA rules folder (`POSTERN_YARA_DIR`; default `rules/yara` or
    /// `/usr/share/postern/rules/yara`, whichever exists).
    pub yara_dir: Option<PathBuf>,
    /// YARA deadline per message (`POSTERN_YARA_TIMEOUT_SECS`, default 10).
    pub yara_timeout: Duration,
    /// Quarantine when YARA fails (`POSTERN_YARA_CRITICAL`, default true).
    pub yara_critical: bool,
    /// How often the rules folder is checked for changes (`POSTERN_YARA_RELOAD_SECS`, default 5).
    pub yara_reload: Duration,
    /// Received headers added by our own servers (`POSTERN_TRUSTED_HOPS`, default 1).
    pub trusted_hops: u32,
    /// Our relay networks (`POSTERN_TRUSTED_RELAYS`, comma-separated CIDRs).
    pub trusted_relays: Vec<ipnet::IpNet>,
    /// Rspamd controller base URL for learning (`POSTERN_RSPAMD_CONTROLLER_URL`).
    pub rspamd_controller_url: Option<String>,
    /// Rspamd controller `enable_password`, needed to learn (`POSTERN_RSPAMD_PASSWORD`); the dashboard can override it.
    pub rspamd_password: Option<String>,
    /// The AI tier (`--features ai`).
    pub ai: AiSettings,
}

/// Where the AI tier finds ONNX Runtime and its models, and its thresholds.
#[derive(Debug, Clone, Default)]
pub struct AiSettings {
    /// `libonnxruntime.so` (`POSTERN_AI_RUNTIME`, else `ORT_DYLIB_PATH`).
    pub runtime: Option<PathBuf>,
    /// Folder with mail.onnx and dga.onnx (`POSTERN_AI_MODELS`, default
    /// `models` or `/usr/share/postern/models`).
    pub models: Option<PathBuf>,
    /// Overrides of the trained thresholds (`POSTERN_AI_{PHISH,SPAM,DGA}_THRESHOLD`).
    pub phish_threshold: Option<f64>,
    /// See `phish_threshold`.
    pub spam_threshold: Option<f64>,
    /// See `phish_threshold`.
    pub dga_threshold: Option<f64>,
}

/// IMAP timing and sizing knobs. Defaults follow RFC 2177 and the lessons of
/// long-running IDLE clients (chatmail/core): re-issue IDLE well before the
/// 30-minute server limit and bound every wait.
#[derive(Debug, Clone)]
pub struct ImapTuning {
    /// How long one IDLE lasts before it is re-issued (`POSTERN_IMAP_IDLE_SECS`, ≤ 25 min).
    pub idle_renew: Duration,
    /// Timeout for any single command, including IDLE's DONE (`POSTERN_IMAP_TIMEOUT_SECS`).
    pub command_timeout: Duration,
    /// Poll interval when the server lacks IDLE (`POSTERN_IMAP_POLL_SECS`).
    pub poll_interval: Duration,
    /// First reconnect delay (`POSTERN_IMAP_BACKOFF_MIN_MS`).
    pub backoff_min: Duration,
    /// Cap for the exponential reconnect delay (`POSTERN_IMAP_BACKOFF_MAX_SECS`).
    pub backoff_max: Duration,
    /// Messages fetched per `UID FETCH` (`POSTERN_FETCH_CHUNK`).
    pub fetch_chunk: u32,
    /// Largest message body fetched for scanning (`POSTERN_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: u32,
    /// How often pending actions are retried (`POSTERN_ACTION_RETRY_SECS`).
    pub action_retry: Duration,
    /// Attempts after which an action ends `failed` and waits for the
    /// operator (`POSTERN_ACTION_MAX_ATTEMPTS`; issue 15, defect 3).
    pub action_max_attempts: u32,
    /// Silence in IDLE after which the server must prove it is there
    /// (`POSTERN_IMAP_PROBE_SECS`; issue 18, item 9).
    pub probe_every: Duration,
    /// How long the server has to answer IDLE or DONE. Fixed at 15 s, the
    /// DONE timeout long-running clients settled on (chatmail/core).
    pub probe_timeout: Duration,
    /// How long the action connection stays open with nothing to do. The
    /// intent runner connects only when actions are pending and logs out
    /// after this much quiet, so an idle account holds only its IDLE
    /// connections (issue 21: two per account hit Dovecot's
    /// `process_limit` at 512 accounts). Fixed at 60 s.
    pub action_idle: Duration,
    /// A folder failing this long without a healthy pass becomes an account
    /// error with an alert (`POSTERN_IMAP_STUCK_MINS`; issue 18, item 10).
    pub stuck_after: Duration,
}

impl Default for ImapTuning {
    fn default() -> Self {
        Self {
            idle_renew: Duration::from_secs(5 * 60),
            command_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(60),
            backoff_min: Duration::from_millis(1000),
            backoff_max: Duration::from_secs(300),
            fetch_chunk: 16,
            max_message_bytes: 50 * 1024 * 1024,
            action_retry: Duration::from_secs(30),
            action_max_attempts: 10,
            probe_every: Duration::from_secs(45),
            probe_timeout: Duration::from_secs(15),
            action_idle: Duration::from_secs(60),
            stuck_after: Duration::from_secs(30 * 60),
        }
    }
}

pub(super) struct Reader<'a> {
    pub(super) vars: &'a BTreeMap<String, String>,
    pub(super) problems: &'a mut Vec<Problem>,
}

thread_local! {
    /// The names `Reader::get` was asked for while [`read_names`] runs. A
    /// thread-local rather than a `Reader` field so that every place that
    /// builds a `Reader` keeps working unchanged; it is `None` (nothing is
    /// recorded) outside `read_names`.
    static ASKED: std::cell::RefCell<Option<std::collections::BTreeSet<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// Every variable name the settings parser asks for when given `vars`
/// (names read only under some other setting count only when that setting
/// is there, which is the truth: otherwise they are ignored).
pub(super) fn read_names(vars: &BTreeMap<String, String>) -> std::collections::BTreeSet<String> {
    ASKED.with(|a| *a.borrow_mut() = Some(Default::default()));
    let mut scratch = Vec::new();
    let _ = parse_settings(vars, &mut scratch);
    let _ = super::logwatch::parse(
        &mut Reader {
            vars,
            problems: &mut scratch,
        },
        Default::default(),
    );
    ASKED.with(|a| a.borrow_mut().take()).unwrap_or_default()
}

impl Reader<'_> {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        ASKED.with(|a| {
            if let Some(seen) = a.borrow_mut().as_mut() {
                seen.insert(key.to_string());
            }
        });
        self.vars.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    pub(super) fn parse<T: FromStr>(&mut self, key: &str, default: T, hint: &str) -> T
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key).map(|v| (v.to_string(), v.parse::<T>())) {
            None => default,
            Some((_, Ok(v))) => v,
            Some((raw, Err(e))) => {
                self.problems.push(Problem::new(key, format!("invalid value {raw:?}: {e}"), hint));
                default
            }
        }
    }

    pub(super) fn ranged(&mut self, key: &str, default: u64, min: u64, max: u64, unit: &str) -> u64 {
        let hint = format!("use a whole number of {unit} between {min} and {max}");
        let v = self.parse(key, default, &hint);
        if !(min..=max).contains(&v) {
            self.problems.push(Problem::new(key, format!("{v} is out of range"), hint));
            return default;
        }
        v
    }

    /// Comma-separated IPs or CIDRs; `default` when unset.
    fn cidrs(&mut self, key: &str, default: Vec<ipnet::IpNet>) -> Vec<ipnet::IpNet> {
        let Some(v) = self.get(key).map(str::to_string) else {
            return default;
        };
        let mut out = Vec::new();
        for c in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            match c
                .parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            {
                Ok(n) => out.push(n),
                Err(_) => self.problems.push(Problem::new(
                    key,
                    format!("{c:?} is not an IP or CIDR"),
                    "e.g. 10.0.0.0/8,2001:db8::/32",
                )),
            }
        }
        out
    }

    pub(super) fn url(&mut self, key: &str) -> Option<String> {
        let v = self.get(key)?.to_string();
        if !(v.starts_with("http://") || v.starts_with("https://")) || v.len() < 10 {
            self.problems.push(Problem::new(
                key,
                format!("{v:?} is not an http(s) URL"),
                "e.g. http://127.0.0.1:11333",
            ));
            return None;
        }
        Some(v.trim_end_matches('/').to_string())
    }
}

/// Reads settings from `vars`, appending every problem found.
pub fn parse_settings(vars: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Settings {
    let mut r = Reader { vars, problems };
    let listen = r.parse("POSTERN_LISTEN", SocketAddr::from(([127, 0, 0, 1], 8025)), "e.g. 127.0.0.1:8025");
    let data_dir = PathBuf::from(r.get("POSTERN_DATA_DIR").unwrap_or("/var/lib/postern"));
    let db_path = r
        .get("POSTERN_DB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("postern.db"));
    let config_path = PathBuf::from(r.get("POSTERN_CONFIG").unwrap_or("/etc/postern/config.yaml"));

    let db_key = match r.get("POSTERN_DB_ENCRYPTION_KEY") {
        None => {
            r.problems.push(Problem::new(
                "POSTERN_DB_ENCRYPTION_KEY",
                "is not set; it encrypts IMAP passwords and API keys at rest",
                "run `postern gen-secrets` and paste its output into postern.env",
            ));
            [0u8; 32]
        }
        Some(v) => decode_key(v).unwrap_or_else(|e| {
            r.problems.push(Problem::new(
                "POSTERN_DB_ENCRYPTION_KEY",
                e,
                "use 32 random bytes in base64, e.g. from `postern gen-secrets`",
            ));
            [0u8; 32]
        }),
    };

    let admin_password_hash = r.get("POSTERN_ADMIN_PASSWORD_HASH").map(str::to_string);
    if let Some(h) = &admin_password_hash {
        let valid = h.len() == 60 && (h.starts_with("$2b$") || h.starts_with("$2a$") || h.starts_with("$2y$"));
        if !valid || looks_like_placeholder(h) {
            r.problems.push(Problem::new(
                "POSTERN_ADMIN_PASSWORD_HASH",
                "is not a bcrypt hash",
                "create one with `postern hash-password` (quote it: it contains `$`)",
            ));
        }
    }

    let rspamd_url = r.url("POSTERN_RSPAMD_URL");
    let clamd_addr = r.get("POSTERN_CLAMD_ADDR").map(str::to_string);
    // Defaults from the scanner table (crate::scan::registry).
    use crate::scan::{FailureMode, registry};
    let critical = |r: &mut Reader<'_>, row: &registry::Spec| {
        let key = row.fail_setting.unwrap_or_default();
        r.parse(key, row.fail == FailureMode::Closed, "true or false")
    };
    let rspamd_critical = critical(&mut r, &registry::RSPAMD);
    let clamd_critical = critical(&mut r, &registry::CLAMAV);
    let policy_path = r.get("POSTERN_POLICY").map(PathBuf::from);
    if let Some(p) = &policy_path
        && !p.is_file()
    {
        r.problems.push(Problem::new(
            "POSTERN_POLICY",
            format!("{} does not exist", p.display()),
            "point it at a policy.toml (see rules/policy.toml)",
        ));
    } else if let Some(p) = &policy_path
        && let Err(e) = crate::scan::Policy::load(p)
    {
        // Checked here so check-config and startup report it with the rest.
        r.problems.push(Problem::new(
            "POSTERN_POLICY",
            e.to_string(),
            "score every tag the scanners emit and only those (compare with rules/policy.toml)",
        ));
    }
    let yara_critical = critical(&mut r, &registry::YARA);
    let yara_dir = match r.get("POSTERN_YARA_DIR") {
        Some(d) => {
            let p = PathBuf::from(d);
            if !p.is_dir() {
                r.problems.push(Problem::new(
                    "POSTERN_YARA_DIR",
                    format!("{d} is not a folder"),
                    "point it at a folder of .yar files (see rules/yara)",
                ));
            }
            Some(p)
        }
        None => ["rules/yara", "/usr/share/postern/rules/yara"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_dir()),
    };
    let trusted_relays = r.cidrs("POSTERN_TRUSTED_RELAYS", Vec::new());
    let probability = |r: &mut Reader<'_>, key: &str| {
        let v = r.get(key).is_some().then(|| r.parse(key, 0.9, "a probability between 0 and 1"))?;
        if !(0.0..=1.0).contains(&v) {
            r.problems
                .push(Problem::new(key, format!("{v} is not between 0 and 1"), "e.g. 0.95"));
        }
        Some(v)
    };
    let ai = AiSettings {
        runtime: r.get("POSTERN_AI_RUNTIME").map(PathBuf::from),
        models: r.get("POSTERN_AI_MODELS").map(PathBuf::from).or_else(|| {
            ["models", "/usr/share/postern/models"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.join("mail.onnx").is_file())
        }),
        phish_threshold: probability(&mut r, "POSTERN_AI_PHISH_THRESHOLD"),
        spam_threshold: probability(&mut r, "POSTERN_AI_SPAM_THRESHOLD"),
        dga_threshold: probability(&mut r, "POSTERN_AI_DGA_THRESHOLD"),
    };
    let rspamd_controller_url = r.url("POSTERN_RSPAMD_CONTROLLER_URL");
    let rspamd_password = r.get("POSTERN_RSPAMD_PASSWORD").map(str::to_string);
    let wd = WebSettings::default();
    let web = WebSettings {
        insecure_cookies: r.parse("POSTERN_INSECURE_COOKIES", false, "true or false"),
        trusted_proxies: r.cidrs("POSTERN_TRUSTED_PROXIES", Vec::new()),
        metrics_allow: r.cidrs("POSTERN_METRICS_ALLOW", wd.metrics_allow),
        scan_api_allow: r.cidrs("POSTERN_SCAN_API_ALLOW", wd.scan_api_allow),
        session_idle: Duration::from_secs(60 * r.ranged("POSTERN_SESSION_IDLE_MINS", 30, 1, 24 * 60, "minutes")),
        session_max: Duration::from_secs(3600 * r.ranged("POSTERN_SESSION_MAX_HOURS", 12, 1, 24 * 30, "hours")),
        login_max_failures: r.ranged("POSTERN_LOGIN_MAX_FAILURES", 5, 1, 100, "attempts") as u32,
        login_lockout: Duration::from_secs(60 * r.ranged("POSTERN_LOGIN_LOCKOUT_MINS", 15, 1, 24 * 60, "minutes")),
        login_max_global: r.ranged("POSTERN_LOGIN_MAX_ATTEMPTS_GLOBAL", 100, 1, 100_000, "attempts") as u32,
        allowed_hosts: r
            .get("POSTERN_ALLOWED_HOSTS")
            .map(|v| {
                v.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let scan = ScanSettings {
        pdf_worker: None,
        trusted_hops: r.ranged("POSTERN_TRUSTED_HOPS", 1, 1, 20, "hops") as u32,
        trusted_relays,
        rspamd_controller_url,
        rspamd_password,
        ai,
        yara_dir,
        yara_critical,
        yara_timeout: Duration::from_secs(r.ranged("POSTERN_YARA_TIMEOUT_SECS", registry::YARA.timeout.as_secs(), 1, 600, "seconds")),
        yara_reload: Duration::from_secs(r.ranged("POSTERN_YARA_RELOAD_SECS", 5, 1, 3600, "seconds")),
        rspamd_timeout: Duration::from_secs(r.ranged("POSTERN_RSPAMD_TIMEOUT_SECS", registry::RSPAMD.timeout.as_secs(), 1, 600, "seconds")),
        clamd_timeout: Duration::from_secs(r.ranged("POSTERN_CLAMD_TIMEOUT_SECS", registry::CLAMAV.timeout.as_secs(), 1, 600, "seconds")),
        clamd_stream_max: r.ranged("POSTERN_CLAMD_STREAM_MAX", 25 * 1024 * 1024, 1024, 1024 * 1024 * 1024, "bytes") as usize,
        protected_domains: r
            .get("POSTERN_PROTECTED_DOMAINS")
            .map(|v| {
                v.split(',')
                    .map(|d| d.trim().to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        authserv_id: r.get("POSTERN_AUTHSERV_ID").map(str::to_string),
        policy_path,
        rspamd_critical,
        clamd_critical,
        rspamd_url: None,
        clamd_addr: None,
    };
    if let Some(a) = &clamd_addr
        && a.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none()
    {
        r.problems.push(Problem::new(
            "POSTERN_CLAMD_ADDR",
            format!("{a:?} is not host:port"),
            "e.g. 127.0.0.1:3310",
        ));
    }
    let threshold_flag = r
        .get("POSTERN_THRESHOLD_FLAG")
        .is_some()
        .then(|| r.parse("POSTERN_THRESHOLD_FLAG", 5.0, "a number such as 5.0"));
    let threshold_quarantine = r
        .get("POSTERN_THRESHOLD_QUARANTINE")
        .is_some()
        .then(|| r.parse("POSTERN_THRESHOLD_QUARANTINE", 10.0, "a number such as 10.0"));
    if let (Some(threshold_flag), Some(threshold_quarantine)) = (threshold_flag, threshold_quarantine)
        && threshold_flag > threshold_quarantine
    {
        r.problems.push(Problem::new(
            "POSTERN_THRESHOLD_FLAG",
            format!("{threshold_flag} is above POSTERN_THRESHOLD_QUARANTINE ({threshold_quarantine})"),
            "the flag threshold must not exceed the quarantine threshold",
        ));
    }

    let intel = super::intel::parse(&mut r, &data_dir);
    let background = super::background::parse(&mut r, &data_dir);
    let milter = super::milter::parse(&mut r);
    let d = ImapTuning::default();
    let imap = ImapTuning {
        // RFC 2177: servers may drop an IDLE after 30 minutes; stay below 25.
        idle_renew: Duration::from_secs(r.ranged("POSTERN_IMAP_IDLE_SECS", d.idle_renew.as_secs(), 1, 25 * 60, "seconds")),
        command_timeout: Duration::from_secs(r.ranged("POSTERN_IMAP_TIMEOUT_SECS", 60, 1, 600, "seconds")),
        poll_interval: Duration::from_secs(r.ranged("POSTERN_IMAP_POLL_SECS", 60, 1, 3600, "seconds")),
        backoff_min: Duration::from_millis(r.ranged("POSTERN_IMAP_BACKOFF_MIN_MS", 1000, 10, 60_000, "milliseconds")),
        backoff_max: Duration::from_secs(r.ranged("POSTERN_IMAP_BACKOFF_MAX_SECS", 300, 1, 3600, "seconds")),
        fetch_chunk: r.ranged("POSTERN_FETCH_CHUNK", 16, 1, 500, "messages") as u32,
        max_message_bytes: r.ranged(
            "POSTERN_MAX_MESSAGE_BYTES",
            d.max_message_bytes as u64,
            1024,
            512 * 1024 * 1024,
            "bytes",
        ) as u32,
        action_retry: Duration::from_secs(r.ranged("POSTERN_ACTION_RETRY_SECS", 30, 1, 3600, "seconds")),
        action_max_attempts: r.ranged("POSTERN_ACTION_MAX_ATTEMPTS", d.action_max_attempts.into(), 1, 1000, "attempts") as u32,
        // 45 s of silence plus the 15 s answer time: a half-open IDLE is
        // found within about a minute.
        probe_every: Duration::from_secs(r.ranged("POSTERN_IMAP_PROBE_SECS", d.probe_every.as_secs(), 5, 25 * 60, "seconds")),
        probe_timeout: d.probe_timeout,
        action_idle: d.action_idle,
        stuck_after: Duration::from_secs(60 * r.ranged("POSTERN_IMAP_STUCK_MINS", d.stuck_after.as_secs() / 60, 1, 7 * 24 * 60, "minutes")),
    };
    let log_format = match r.get("POSTERN_LOG_FORMAT").unwrap_or("pretty") {
        "pretty" | "text" => LogFormat::Pretty,
        "json" => LogFormat::Json,
        other => {
            r.problems.push(Problem::new(
                "POSTERN_LOG_FORMAT",
                format!("unknown format {other:?}"),
                "use `pretty` or `json`",
            ));
            LogFormat::Pretty
        }
    };
    Settings {
        listen,
        eml_dir: data_dir.join("eml"),
        data_dir,
        db_path,
        config_path,
        db_key,
        admin_password_hash,
        scan: ScanSettings {
            rspamd_url,
            clamd_addr,
            ..scan
        },
        threshold_flag,
        threshold_quarantine,
        imap,
        intel,
        background,
        milter,
        logwatch: super::LogwatchSettings::default(),
        log_format,
        web,
    }
}

impl Settings {
    /// Settings for `postern scan`: only scanner-related problems count
    /// (no database key or accounts are needed to scan a file).
    pub fn from_env_for_scan() -> Result<Settings, super::ConfigError> {
        let vars: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("POSTERN_")).collect();
        let mut problems = Vec::new();
        let s = parse_settings(&vars, &mut problems);
        problems.retain(|p| p.path != "POSTERN_DB_ENCRYPTION_KEY");
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(super::ConfigError::Invalid(problems))
        }
    }

    /// Settings for tests and embedding: everything under `data_dir`.
    pub fn for_data_dir(data_dir: PathBuf, db_key: [u8; 32]) -> Settings {
        let (vars, mut problems) = (BTreeMap::new(), Vec::new());
        let intel = super::intel::parse(
            &mut Reader {
                vars: &vars,
                problems: &mut problems,
            },
            &data_dir,
        );
        let background = super::background::parse(
            &mut Reader {
                vars: &vars,
                problems: &mut problems,
            },
            &data_dir,
        );
        Settings {
            intel,
            background,
            milter: super::MilterSettings::default(),
            logwatch: super::LogwatchSettings::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_path: data_dir.join("postern.db"),
            eml_dir: data_dir.join("eml"),
            config_path: data_dir.join("config.yaml"),
            data_dir,
            db_key,
            admin_password_hash: None,
            scan: ScanSettings {
                rspamd_timeout: Duration::from_secs(20),
                clamd_timeout: Duration::from_secs(30),
                rspamd_critical: true,
                clamd_critical: true,
                clamd_stream_max: 25 * 1024 * 1024,
                yara_timeout: Duration::from_secs(10),
                yara_critical: true,
                yara_reload: Duration::from_secs(5),
                trusted_hops: 1,
                ..Default::default()
            },
            threshold_flag: None,
            threshold_quarantine: None,
            imap: ImapTuning::default(),
            log_format: LogFormat::Pretty,
            web: WebSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn issue_14_a_policy_with_an_unknown_or_unscored_tag_is_a_config_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let bad = crate::scan::DEFAULT_POLICY.replace("ATT_LNK = 12.0", "ATT_LINK = 12.0");
        std::fs::write(&path, bad).unwrap();
        let mut p = Vec::new();
        parse_settings(&vars(&[("POSTERN_POLICY", path.to_str().unwrap())]), &mut p);
        let found = p.iter().find(|p| p.path == "POSTERN_POLICY").map(|p| p.message.clone());
        let msg = found.unwrap_or_default();
        assert!(
            msg.contains("no score for ATT_LNK") && msg.contains("no scanner emits ATT_LINK"),
            "{p:?}"
        );
        std::fs::write(&path, crate::scan::DEFAULT_POLICY).unwrap();
        let mut p = Vec::new();
        parse_settings(&vars(&[("POSTERN_POLICY", path.to_str().unwrap())]), &mut p);
        assert!(p.iter().all(|p| p.path != "POSTERN_POLICY"), "the shipped policy is fine: {p:?}");
    }

    #[test]
    fn every_bad_variable_is_reported() {
        let mut p = Vec::new();
        parse_settings(
            &vars(&[
                ("POSTERN_LISTEN", "nowhere"),
                ("POSTERN_IMAP_IDLE_SECS", "99999"),
                ("POSTERN_RSPAMD_URL", "ftp://x"),
                ("POSTERN_LOG_FORMAT", "xml"),
                ("POSTERN_ADMIN_PASSWORD_HASH", "changeme"),
            ]),
            &mut p,
        );
        let paths: Vec<_> = p.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "POSTERN_LISTEN",
            "POSTERN_DB_ENCRYPTION_KEY",
            "POSTERN_IMAP_IDLE_SECS",
            "POSTERN_RSPAMD_URL",
            "POSTERN_LOG_FORMAT",
            "POSTERN_ADMIN_PASSWORD_HASH",
        ] {
            assert!(paths.contains(&want), "{want} missing from {paths:?}");
        }
        assert!(p.iter().all(|p| !p.hint.is_empty()));
    }

    #[test]
    fn defaults_are_sane() {
        let mut p = Vec::new();
        let key = hex::encode((1u8..33).collect::<Vec<_>>());
        let s = parse_settings(
            &vars(&[("POSTERN_DB_ENCRYPTION_KEY", &key), ("POSTERN_DATA_DIR", "/srv/p")]),
            &mut p,
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.db_path, PathBuf::from("/srv/p/postern.db"));
        assert!(s.imap.idle_renew <= Duration::from_secs(25 * 60));
    }
}
