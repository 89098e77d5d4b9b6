//! Threat intelligence: URL, domain, IP and hash feeds, the operator's own
//! indicators (IOCs), an SSRF-safe HTTP client for everything that leaves
//! the host, the URL unshortener and the reputation services (RDAP,
//! AbuseIPDB, VirusTotal).
//!
//! Like `scan`, nothing here touches the store, IMAP or the web layer:
//! caches that must outlive a restart are reached through small traits
//! (`rep::RepCache`) that the runtime implements with the store.

pub mod campaign;
pub mod feeds;
pub mod index;
pub mod ioc;
pub mod net;
pub mod rep;
pub mod scanner;
pub mod unshorten;

use serde::{Deserialize, Serialize};

/// What an indicator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One IPv4 or IPv6 address.
    Ip,
    /// A network, e.g. `203.0.113.0/24`.
    Cidr,
    /// A domain; matches the host and every subdomain.
    Domain,
    /// A URL (scheme ignored).
    Url,
    /// SHA-256 of an attachment, lower-case hex.
    Sha256,
    /// An email address (sender, Reply-To).
    Email,
}

impl Kind {
    /// Stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Cidr => "cidr",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Sha256 => "sha256",
            Kind::Email => "email",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "ip" => Kind::Ip,
            "cidr" => Kind::Cidr,
            "domain" => Kind::Domain,
            "url" => Kind::Url,
            "sha256" => Kind::Sha256,
            "email" => Kind::Email,
            _ => return None,
        })
    }
}

/// One entry of a feed: a value of a kind. Feeds carry no per-entry
/// confidence; a feed's entries all count the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedEntry {
    /// What the value is.
    pub kind: Kind,
    /// The value as the feed gives it (normalised when indexed).
    pub value: String,
}

/// Why intelligence could not be fetched or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntelError {
    /// The destination is not allowed (SSRF guard).
    #[error("refused destination {target}: {why}")]
    Refused {
        /// URL or address.
        target: String,
        /// Which rule refused it.
        why: String,
    },
    /// A transport failure.
    #[error("{0}")]
    Http(String),
    /// The service answered something we cannot read.
    #[error("unreadable answer from {source_name}: {detail}")]
    Format {
        /// Feed or service.
        source_name: String,
        /// What was wrong.
        detail: String,
    },
    /// The on-disk cache.
    #[error("feed cache: {0}")]
    Io(#[from] std::io::Error),
}
