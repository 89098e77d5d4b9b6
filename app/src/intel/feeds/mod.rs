//! Public blocklist feeds (URLhaus, OpenPhish, PhishTank, ThreatFox,
//! MalwareBazaar): what each download looks like, where it comes from, and a
//! manager that keeps the last good copy of each in memory and on disk.
//!
//! A feed that cannot be refreshed keeps serving its last good entries: an
//! outage or a broken download must not switch protection off.

mod cache;
mod fetch;
mod formats;
mod manager;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests_formats;
#[cfg(test)]
mod tests_manager;

use serde::{Deserialize, Serialize};
use url::Url;

pub use formats::parse;
pub use manager::{DEFAULT_BODY_LIMIT, FeedChange, FeedManager, FeedStatus, RefreshReport};

/// The download format of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// URLhaus `csv_recent` / `csv_online`: quoted CSV after a `#` comment block.
    #[serde(rename = "urlhaus_csv")]
    UrlhausCsv,
    /// OpenPhish `feed.txt`: one URL per line.
    #[serde(rename = "openphish_text")]
    OpenPhishText,
    /// PhishTank `online-valid.json`: an array of phish records.
    #[serde(rename = "phishtank_json")]
    PhishTankJson,
    /// ThreatFox JSON export: an object of IOC id → list of IOCs.
    #[serde(rename = "threatfox_json")]
    ThreatFoxJson,
    /// MalwareBazaar CSV export: `", "`-separated quoted CSV after a `#` block.
    #[serde(rename = "malwarebazaar_csv")]
    MalwareBazaarCsv,
}

impl Format {
    /// Configuration name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::UrlhausCsv => "urlhaus_csv",
            Format::OpenPhishText => "openphish_text",
            Format::PhishTankJson => "phishtank_json",
            Format::ThreatFoxJson => "threatfox_json",
            Format::MalwareBazaarCsv => "malwarebazaar_csv",
        }
    }

    /// Parses a configuration name.
    pub fn parse_name(s: &str) -> Option<Format> {
        [
            Format::UrlhausCsv,
            Format::OpenPhishText,
            Format::PhishTankJson,
            Format::ThreatFoxJson,
            Format::MalwareBazaarCsv,
        ]
        .into_iter()
        .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// The feed a format belongs to, named in errors.
    pub fn source(self) -> &'static str {
        match self {
            Format::UrlhausCsv => "urlhaus",
            Format::OpenPhishText => "openphish",
            Format::PhishTankJson => "phishtank",
            Format::ThreatFoxJson => "threatfox",
            Format::MalwareBazaarCsv => "malwarebazaar",
        }
    }
}

/// Where and how to download one feed. Its `Debug` masks the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct FeedSpec {
    /// Name in the index, the status page and the cache file names.
    pub name: String,
    /// How to read the download.
    pub format: Format,
    /// Download URL (may carry a PhishTank key in its path).
    pub url: String,
    /// Extra request headers (e.g. abuse.ch's `Auth-Key`).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for FeedSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("FeedSpec")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &display_url(self))
            .field("headers", &header_names)
            .finish()
    }
}

/// The feeds `builtin` knows.
pub const BUILTIN: &[&str] = &["urlhaus", "openphish", "phishtank", "threatfox", "malwarebazaar"];

const PHISHTANK_DATA: &str = "http://data.phishtank.com/data/";

/// The spec of a built-in feed, `None` for an unknown name. `url_override`
/// replaces the default download URL (a mirror); the keys are used where the
/// feed takes one (empty keys count as none).
pub fn builtin(name: &str, url_override: Option<&str>, phishtank_key: Option<&str>, abusech_key: Option<&str>) -> Option<FeedSpec> {
    let name = name.trim().to_ascii_lowercase();
    let (format, default_url, abusech) = match name.as_str() {
        "urlhaus" => (
            Format::UrlhausCsv,
            "https://urlhaus.abuse.ch/downloads/csv_recent/".to_string(),
            true,
        ),
        "openphish" => (Format::OpenPhishText, "https://openphish.com/feed.txt".to_string(), false),
        "phishtank" => (Format::PhishTankJson, phishtank_url(key(phishtank_key)), false),
        "threatfox" => (
            Format::ThreatFoxJson,
            "https://threatfox.abuse.ch/export/json/recent/".to_string(),
            true,
        ),
        "malwarebazaar" => (
            Format::MalwareBazaarCsv,
            "https://bazaar.abuse.ch/export/csv/recent/".to_string(),
            true,
        ),
        _ => return None,
    };
    let headers = match key(abusech_key) {
        Some(k) if abusech => vec![("Auth-Key".to_string(), k.to_string())],
        _ => Vec::new(),
    };
    let url = url_override
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map_or(default_url, str::to_string);
    Some(FeedSpec {
        name,
        format,
        url,
        headers,
    })
}

fn key(k: Option<&str>) -> Option<&str> {
    k.map(str::trim).filter(|k| !k.is_empty())
}

fn phishtank_url(key: Option<&str>) -> String {
    let plain = format!("{PHISHTANK_DATA}online-valid.json");
    let Some(key) = key else { return plain };
    // Pushed as a path segment so a key with odd characters is percent-encoded
    // instead of changing the path.
    let Ok(mut u) = Url::parse(PHISHTANK_DATA) else { return plain };
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop_if_empty().push(key).push("online-valid.json");
    }
    u.to_string()
}

/// The URL as shown on the status page: credentials, query values and the
/// PhishTank key (a path segment) replaced by `***`.
pub(crate) fn display_url(spec: &FeedSpec) -> String {
    let Ok(mut u) = Url::parse(&spec.url) else {
        return "(invalid URL)".to_string();
    };
    if !u.username().is_empty() {
        let _ = u.set_username("***");
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query().is_some() {
        let keys: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
        u.query_pairs_mut().clear().extend_pairs(keys.iter().map(|k| (k, "***")));
    }
    if spec.format == Format::PhishTankJson {
        let segs: Vec<String> = u.path_segments().map(|s| s.map(str::to_string).collect()).unwrap_or_default();
        // /data/<key>/online-valid.json: everything between is the key.
        if segs.len() > 2 && segs[0] == "data" {
            let last = segs.len() - 1;
            let masked: Vec<&str> = segs
                .iter()
                .enumerate()
                .map(|(i, s)| if i == 0 || i == last { s.as_str() } else { "***" })
                .collect();
            if let Ok(mut p) = u.path_segments_mut() {
                p.clear().extend(masked);
            }
        }
    }
    u.to_string()
}
