//! Threat-intelligence settings (`POSTERN_FEED*`, reputation keys,
//! claw-back). Every reputation service is off until configured.

use super::env::Reader;
use super::problem::Problem;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Feed names Postern knows how to read.
pub const FEEDS: &[&str] = &["urlhaus", "openphish", "phishtank", "threatfox", "malwarebazaar"];

/// Threat-intelligence settings.
#[derive(Debug, Clone, Default)]
pub struct IntelSettings {
    /// Enabled feeds with an optional URL override (`POSTERN_FEEDS`,
    /// comma-separated; `POSTERN_FEED_<NAME>_URL` to mirror one).
    pub feeds: Vec<(String, Option<String>)>,
    /// PhishTank application key (`POSTERN_PHISHTANK_KEY`, optional).
    pub phishtank_key: Option<String>,
    /// abuse.ch Auth-Key for URLhaus, ThreatFox, MalwareBazaar (`POSTERN_ABUSECH_AUTH_KEY`).
    pub abusech_key: Option<String>,
    /// Feed refresh interval (`POSTERN_FEED_REFRESH_MINS`, default 60).
    pub feed_refresh: Duration,
    /// Downloaded feeds and bootstrap data (`POSTERN_CACHE_DIR`, default `<data_dir>/cache`).
    pub cache_dir: PathBuf,
    /// Window of delivered mail re-checked when intelligence changes
    /// (`POSTERN_CLAWBACK_HOURS`, default 72; 0 turns claw-back off).
    pub clawback_hours: u32,
    /// Scheduled re-scans after delivery (`POSTERN_RESCAN_AFTER`, default
    /// `5m,12h,24h`; `off` for none).
    pub rescan_after: Vec<(String, Duration)>,
    /// Follow known shortener links (`POSTERN_UNSHORTEN`, default true).
    pub unshorten: bool,
    /// Redirects followed per link (`POSTERN_UNSHORTEN_MAX_HOPS`, default 5).
    pub unshorten_max_hops: usize,
    /// Deadline per link (`POSTERN_UNSHORTEN_TIMEOUT_SECS`, default 5).
    pub unshorten_timeout: Duration,
    /// Requests per second across all links (`POSTERN_UNSHORTEN_PER_SEC`, default 5).
    pub unshorten_per_sec: u32,
    /// More shortener domains (`POSTERN_UNSHORTEN_DOMAINS`, comma-separated).
    pub unshorten_domains: Vec<String>,
    /// Newly registered domain check over RDAP (`POSTERN_RDAP`, default false).
    pub rdap: bool,
    /// Where a fresh IANA bootstrap is fetched (`POSTERN_RDAP_BOOTSTRAP_URL`).
    pub rdap_bootstrap_url: String,
    /// A domain younger than this is "new" (`POSTERN_NEW_DOMAIN_DAYS`, default 30).
    pub new_domain_days: u32,
    /// AbuseIPDB key (`POSTERN_ABUSEIPDB_KEY`); unset disables the scanner.
    pub abuseipdb_key: Option<String>,
    /// AbuseIPDB API base (`POSTERN_ABUSEIPDB_URL`).
    pub abuseipdb_url: String,
    /// VirusTotal key (`POSTERN_VIRUSTOTAL_KEY`); unset disables the scanner.
    pub virustotal_key: Option<String>,
    /// VirusTotal API base (`POSTERN_VIRUSTOTAL_URL`).
    pub virustotal_url: String,
    /// Outbound requests may reach 127.0.0.1 (`POSTERN_TEST_ONLY_ALLOW_LOOPBACK_FETCH`):
    /// for test fixtures only; never set it in production.
    pub allow_loopback_for_tests: bool,
    /// A reported message whose re-scan scores at least this is confirmed
    /// without an operator (`POSTERN_REPORT_AUTO_CONFIRM_SCORE`, default off;
    /// issue 17).
    pub report_auto_confirm: Option<f64>,
    /// Lifetime of the IOCs a confirmed report creates
    /// (`POSTERN_REPORT_IOC_DAYS`, default 30).
    pub report_ioc_days: u32,
}

fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

pub(super) fn parse(r: &mut Reader<'_>, data_dir: &Path) -> IntelSettings {
    let list = |r: &Reader<'_>, key: &str| -> Vec<String> {
        r.get(key)
            .map(|v| {
                v.split(',')
                    .map(|d| d.trim().to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut feeds = Vec::new();
    for name in list(r, "POSTERN_FEEDS") {
        if !FEEDS.contains(&name.as_str()) {
            r.problems.push(Problem::new(
                "POSTERN_FEEDS",
                format!("unknown feed {name:?}"),
                format!("choose from {}", FEEDS.join(", ")),
            ));
            continue;
        }
        let url = r.url(&format!("POSTERN_FEED_{}_URL", name.to_ascii_uppercase()));
        feeds.push((name, url));
    }
    let spec = r.get("POSTERN_RESCAN_AFTER").unwrap_or("5m,12h,24h").to_string();
    let rescan_after = match spec.as_str() {
        "off" | "none" => Vec::new(),
        v => {
            let mut out = Vec::new();
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match duration(part) {
                    Some(d) => out.push((format!("+{part}"), d)),
                    None => r.problems.push(Problem::new(
                        "POSTERN_RESCAN_AFTER",
                        format!("{part:?} is not a delay"),
                        "e.g. 5m,12h,24h (units s, m, h, d), or off",
                    )),
                }
            }
            out
        }
    };
    let key = |r: &Reader<'_>, k: &str| r.get(k).map(str::to_string);
    let report_auto_confirm = match r.get("POSTERN_REPORT_AUTO_CONFIRM_SCORE").map(str::parse::<f64>) {
        None => None,
        Some(Ok(v)) if v.is_finite() && (0.0..=1000.0).contains(&v) => Some(v),
        Some(_) => {
            r.problems.push(Problem::new(
                "POSTERN_REPORT_AUTO_CONFIRM_SCORE",
                "is not a score between 0 and 1000",
                "e.g. 15, or leave it unset to confirm every report by hand",
            ));
            None
        }
    };
    IntelSettings {
        feeds,
        phishtank_key: key(r, "POSTERN_PHISHTANK_KEY"),
        abusech_key: key(r, "POSTERN_ABUSECH_AUTH_KEY"),
        feed_refresh: Duration::from_secs(60 * r.ranged("POSTERN_FEED_REFRESH_MINS", 60, 5, 7 * 24 * 60, "minutes")),
        cache_dir: r.get("POSTERN_CACHE_DIR").map_or_else(|| data_dir.join("cache"), PathBuf::from),
        clawback_hours: r.ranged("POSTERN_CLAWBACK_HOURS", 72, 0, 24 * 30, "hours") as u32,
        rescan_after,
        unshorten: r.parse("POSTERN_UNSHORTEN", true, "true or false"),
        unshorten_max_hops: r.ranged("POSTERN_UNSHORTEN_MAX_HOPS", 5, 1, 20, "hops") as usize,
        unshorten_timeout: Duration::from_secs(r.ranged("POSTERN_UNSHORTEN_TIMEOUT_SECS", 5, 1, 60, "seconds")),
        unshorten_per_sec: r.ranged("POSTERN_UNSHORTEN_PER_SEC", 5, 1, 100, "requests per second") as u32,
        unshorten_domains: list(r, "POSTERN_UNSHORTEN_DOMAINS"),
        rdap: r.parse("POSTERN_RDAP", false, "true or false"),
        rdap_bootstrap_url: r
            .url("POSTERN_RDAP_BOOTSTRAP_URL")
            .unwrap_or_else(|| "https://data.iana.org/rdap/dns.json".into()),
        new_domain_days: r.ranged("POSTERN_NEW_DOMAIN_DAYS", 30, 1, 365, "days") as u32,
        abuseipdb_key: key(r, "POSTERN_ABUSEIPDB_KEY"),
        abuseipdb_url: r
            .url("POSTERN_ABUSEIPDB_URL")
            .unwrap_or_else(|| "https://api.abuseipdb.com/api/v2".into()),
        virustotal_key: key(r, "POSTERN_VIRUSTOTAL_KEY"),
        virustotal_url: r
            .url("POSTERN_VIRUSTOTAL_URL")
            .unwrap_or_else(|| "https://www.virustotal.com/api/v3".into()),
        allow_loopback_for_tests: r.parse("POSTERN_TEST_ONLY_ALLOW_LOOPBACK_FETCH", false, "true or false"),
        report_auto_confirm,
        report_ioc_days: r.ranged("POSTERN_REPORT_IOC_DAYS", 30, 1, 365, "days") as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays() {
        assert_eq!(duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(duration("24h"), Some(Duration::from_secs(86400)));
        assert_eq!(duration("0m"), None);
        assert_eq!(duration("5"), None);
        assert_eq!(duration("5y"), None);
    }
}
