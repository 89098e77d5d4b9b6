//! The IANA RDAP bootstrap registry for domains (RFC 9224): which RDAP
//! server answers for which TLD. A partial snapshot ships in
//! `rules/rdap/dns.json`; the full file can be downloaded from IANA.

use crate::intel::IntelError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The snapshot built into the binary.
pub const EMBEDDED: &str = include_str!("../../../../rules/rdap/dns.json");

/// Where IANA publishes the full registry.
pub const IANA_URL: &str = "https://data.iana.org/rdap/dns.json";

/// Largest bootstrap file accepted (IANA's is about 100 KB).
pub const MAX_BOOTSTRAP_BYTES: usize = 4 * 1024 * 1024;

/// The file as published.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    description: String,
    #[serde(default)]
    publication: String,
    services: Vec<(Vec<String>, Vec<String>)>,
    #[serde(default)]
    version: String,
}

/// A parsed bootstrap registry: suffix → RDAP base URL.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    file: File,
    servers: HashMap<String, String>,
}

impl Bootstrap {
    /// Parses an RFC 9224 file. One without any usable service is refused,
    /// so a broken download never replaces a working registry.
    pub fn parse(json: &str) -> Result<Bootstrap, IntelError> {
        let bad = |detail: String| IntelError::Format {
            source_name: "rdap bootstrap".into(),
            detail,
        };
        let file: File = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        let mut servers = HashMap::new();
        for (suffixes, urls) in &file.services {
            let Some(base) = pick_base(urls) else { continue };
            for s in suffixes {
                let s = s.trim().trim_matches('.').to_ascii_lowercase();
                if !s.is_empty() {
                    servers.insert(s, base.clone());
                }
            }
        }
        if servers.is_empty() {
            return Err(bad("no usable services".into()));
        }
        Ok(Bootstrap { file, servers })
    }

    /// The snapshot shipped in `rules/rdap/dns.json`.
    pub fn embedded() -> Result<Bootstrap, IntelError> {
        Bootstrap::parse(EMBEDDED)
    }

    /// The RDAP base URL (ending in `/`) for an ASCII domain name: the
    /// longest suffix, on label boundaries, that the registry lists.
    pub fn server_for(&self, domain: &str) -> Option<&str> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let mut rest = domain.as_str();
        loop {
            if let Some(base) = self.servers.get(rest) {
                return Some(base);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// Suffixes (TLDs) covered.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether no suffix is covered (never true for a parsed registry).
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The file's `publication` timestamp, as given.
    pub fn publication(&self) -> &str {
        &self.file.publication
    }

    /// The file's `description`.
    pub fn description(&self) -> &str {
        &self.file.description
    }

    /// The registry in RFC 9224 format, for a cache file.
    pub fn to_json(&self) -> Result<String, IntelError> {
        serde_json::to_string_pretty(&self.file).map_err(|e| IntelError::Format {
            source_name: "rdap bootstrap".into(),
            detail: e.to_string(),
        })
    }
}

/// RFC 9224 §3: prefer an https base when several are listed. Bases are
/// normalised to end in `/` so `domain/<name>` can be appended.
fn pick_base(urls: &[String]) -> Option<String> {
    let parsed: Vec<url::Url> = urls
        .iter()
        .filter_map(|u| url::Url::parse(u.trim()).ok())
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .collect();
    let mut best = parsed.iter().find(|u| u.scheme() == "https").or_else(|| parsed.first())?.clone();
    if !best.path().ends_with('/') {
        let path = format!("{}/", best.path());
        best.set_path(&path);
    }
    Some(best.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_snapshot_parses_and_maps_com_to_verisign() {
        let b = Bootstrap::embedded().unwrap();
        assert_eq!(b.server_for("example.com"), Some("https://rdap.verisign.com/com/v1/"));
        assert_eq!(b.server_for("WWW.Example.NET."), Some("https://rdap.verisign.com/net/v1/"));
        assert_eq!(b.server_for("wikipedia.org"), Some("https://rdap.publicinterestregistry.org/rdap/"));
        assert_eq!(b.server_for("bbc.co.uk"), Some("https://rdap.nominet.uk/uk/"));
        assert_eq!(b.server_for("example.invalid"), None);
        assert!(b.description().contains("partial snapshot"), "{}", b.description());
        assert!(b.len() >= 10, "{}", b.len());
    }

    #[test]
    fn longest_suffix_wins_and_https_is_preferred() {
        let b = Bootstrap::parse(
            r#"{"description":"t","publication":"2026-11-01T00:00:00Z","version":"1.0","services":[
                [["test"],["http://plain.example/rdap/","https://tls.example/rdap"]],
                [["sub.test"],["https://sub.example/"]],
                [["bad"],["ftp://nope.example/"]]
            ]}"#,
        )
        .unwrap();
        assert_eq!(b.server_for("a.test"), Some("https://tls.example/rdap/"));
        assert_eq!(b.server_for("x.sub.test"), Some("https://sub.example/"));
        assert_eq!(
            b.server_for("xsub.test"),
            Some("https://tls.example/rdap/"),
            "labels, not characters"
        );
        assert_eq!(b.server_for("a.bad"), None, "no usable base");
        assert_eq!(b.len(), 2);
        let again = Bootstrap::parse(&b.to_json().unwrap()).unwrap();
        assert_eq!(again.server_for("x.sub.test"), Some("https://sub.example/"));
        assert_eq!(again.publication(), "2026-11-01T00:00:00Z");
    }

    #[test]
    fn unusable_files_are_refused() {
        assert!(Bootstrap::parse("<html>not json</html>").is_err());
        assert!(Bootstrap::parse(r#"{"services":[]}"#).is_err());
        assert!(Bootstrap::parse(r#"{"services":[[["x"],["mailto:a@b"]]]}"#).is_err());
    }
}
