//! The in-memory indicator index: every feed entry and every live IOC,
//! keyed by a 64-bit hash of its normalised form so a million entries fit
//! in tens of megabytes. Built off to the side and swapped in whole
//! (`arc-swap`), so a lookup never sees half a refresh.
//!
//! Matching rules:
//! - URL entries match the same URL (scheme ignored) and, off shared
//!   hosting, any URL under the same host and path prefix;
//! - domain entries match the host and its subdomains, never past the
//!   registrable domain; on shared hosting only the exact host;
//! - IP, CIDR, SHA-256 and email entries match exactly;
//! - an IOC flagged false-positive suppresses every hit on its value,
//!   from feeds too; an expired IOC matches nothing.

use super::{FeedEntry, Kind};
use crate::scan::urls::registrable;
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use url::Url;

/// Registrable domains where anyone can publish under a subdomain or path,
/// so one bad URL says nothing about its neighbours.
pub const SHARED_HOSTING: &[&str] = &[
    "github.io",
    "githubusercontent.com",
    "gitlab.io",
    "blogspot.com",
    "wordpress.com",
    "wixsite.com",
    "weebly.com",
    "squarespace.com",
    "webflow.io",
    "netlify.app",
    "vercel.app",
    "pages.dev",
    "workers.dev",
    "herokuapp.com",
    "web.app",
    "firebaseapp.com",
    "appspot.com",
    "azurewebsites.net",
    "windows.net",
    "amazonaws.com",
    "cloudfront.net",
    "googleapis.com",
    "google.com",
    "sharepoint.com",
    "live.com",
    "1drv.ms",
    "dropbox.com",
    "dropboxusercontent.com",
    "box.com",
    "glitch.me",
    "repl.co",
    "onrender.com",
    "fly.dev",
    "ngrok.io",
    "ngrok-free.app",
    "r2.dev",
    "ipfs.io",
    "000webhostapp.com",
    "godaddysites.com",
    "jimdosite.com",
    "mystrikingly.com",
    "notion.site",
    "typeform.com",
    "forms.gle",
    "canva.site",
    "translate.goog",
];

/// Severity of an indicator, as the operator or source rates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Low,
    /// Suspicious.
    #[default]
    Medium,
    /// Malicious.
    High,
    /// Malicious and urgent.
    Critical,
}

impl Severity {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Feed name, or the IOC's source.
    pub name: String,
    /// The IOC's id, for IOCs.
    pub ioc: Option<i64>,
    /// 0–100.
    pub confidence: u8,
    /// How bad a hit is.
    pub severity: Severity,
    /// Unix seconds after which the IOC no longer matches.
    pub expires: Option<i64>,
}

impl Source {
    /// A feed: its entries are all equally trusted.
    pub fn feed(name: &str) -> Source {
        Source {
            name: name.to_string(),
            ioc: None,
            confidence: 90,
            severity: Severity::High,
            expires: None,
        }
    }
}

/// An operator's indicator, as the index needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct IocEntry {
    /// Id in the store.
    pub id: i64,
    /// Kind.
    pub kind: Kind,
    /// Value.
    pub value: String,
    /// Source, confidence, severity and expiry.
    pub source: Source,
    /// Flagged false positive: suppresses matches on this value.
    pub false_positive: bool,
}

/// One match.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Kind of the entry that matched.
    pub kind: Kind,
    /// The message's value that matched (URL, host, IP, hash, address).
    pub value: String,
    /// Who said so.
    pub source: Source,
}

/// The index. Cheap to share; rebuild and swap to change.
#[derive(Debug, Default)]
pub struct Index {
    sources: Vec<Source>,
    exact: HashMap<u64, u32>,
    prefix: HashMap<u64, u32>,
    domains: HashMap<u64, u32>,
    ips: HashMap<IpAddr, u32>,
    cidrs: Vec<(IpNet, u32)>,
    other: HashMap<u64, u32>,
    suppressed: HashSet<u64>,
}

fn h(tag: u8, s: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    tag.hash(&mut hasher);
    s.hash(&mut hasher);
    hasher.finish()
}

/// Lower-case host without a trailing dot.
fn host_of(u: &Url) -> Option<String> {
    u.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase())
}

/// A URL's identity for matching: host, port if not default, path, query.
pub fn url_key(u: &Url) -> Option<String> {
    let host = host_of(u)?;
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    let q = u.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("{host}{port}{}{q}", u.path()))
}

fn parse_url(s: &str) -> Option<Url> {
    let s = s.trim();
    let u = Url::parse(s).or_else(|_| Url::parse(&format!("http://{s}"))).ok()?;
    matches!(u.scheme(), "http" | "https").then_some(u)
}

/// Whether a host lives on shared hosting.
/// (The Public Suffix List already treats some of these, like github.io, as
/// suffixes; others, like sharepoint.com, it does not.)
pub fn is_shared_hosting(host: &str) -> bool {
    let host = norm_domain(host);
    SHARED_HOSTING.iter().any(|d| crate::scan::urls::on_domain(&host, d))
}

fn norm_domain(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Builds an index.
#[derive(Debug, Default)]
pub struct Builder {
    index: Index,
}

impl Builder {
    /// Starts empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a feed's entries under one source.
    pub fn feed(&mut self, name: &str, entries: &[FeedEntry]) -> &mut Self {
        let src = self.source(Source::feed(name));
        for e in entries {
            self.insert(e.kind, &e.value, src, false);
        }
        self
    }

    /// Adds operator IOCs that are live at `now` (unix seconds). A
    /// false-positive IOC suppresses its value instead.
    pub fn iocs(&mut self, iocs: &[IocEntry], now: i64) -> &mut Self {
        for i in iocs {
            if i.false_positive {
                for k in keys(i.kind, &i.value) {
                    self.index.suppressed.insert(k);
                }
                continue;
            }
            if i.source.expires.is_some_and(|e| e <= now) {
                continue;
            }
            let src = self.source(i.source.clone());
            // An IOC wins over a feed on the same key: its id records the sighting.
            self.insert(i.kind, &i.value, src, true);
        }
        self
    }

    /// The finished index.
    pub fn build(self) -> Index {
        self.index
    }

    fn source(&mut self, s: Source) -> u32 {
        self.index.sources.push(s);
        (self.index.sources.len() - 1) as u32
    }

    fn insert(&mut self, kind: Kind, value: &str, src: u32, wins: bool) {
        let ix = &mut self.index;
        let put = |m: &mut HashMap<u64, u32>, k: u64| {
            if wins {
                m.insert(k, src);
            } else {
                m.entry(k).or_insert(src);
            }
        };
        match kind {
            Kind::Url => {
                let Some(u) = parse_url(value) else { return };
                let (Some(key), Some(host)) = (url_key(&u), host_of(&u)) else {
                    return;
                };
                put(&mut ix.exact, h(b'u', &key));
                if !is_shared_hosting(&host) {
                    put(&mut ix.prefix, h(b'p', &format!("{host}{}", u.path())));
                }
            }
            Kind::Domain => put(&mut ix.domains, h(b'd', &norm_domain(value))),
            Kind::Ip => {
                if let Ok(ip) = value.trim().parse::<IpAddr>() {
                    if wins {
                        ix.ips.insert(ip, src);
                    } else {
                        ix.ips.entry(ip).or_insert(src);
                    }
                }
            }
            Kind::Cidr => {
                if let Ok(net) = value.trim().parse::<IpNet>() {
                    ix.cidrs.push((net.trunc(), src));
                }
            }
            Kind::Sha256 => put(&mut ix.other, h(b'h', &value.trim().to_ascii_lowercase())),
            Kind::Email => put(&mut ix.other, h(b'e', &value.trim().to_ascii_lowercase())),
        }
    }
}

/// The keys a value is stored under (for false-positive suppression).
fn keys(kind: Kind, value: &str) -> Vec<u64> {
    match kind {
        Kind::Url => parse_url(value)
            .and_then(|u| url_key(&u))
            .map(|k| vec![h(b'u', &k)])
            .unwrap_or_default(),
        Kind::Domain => vec![h(b'd', &norm_domain(value))],
        Kind::Ip | Kind::Cidr => vec![h(b'i', value.trim())],
        Kind::Sha256 => vec![h(b'h', &value.trim().to_ascii_lowercase())],
        Kind::Email => vec![h(b'e', &value.trim().to_ascii_lowercase())],
    }
}

impl Index {
    /// Entries indexed (URLs count once, however many keys they have).
    pub fn len(&self) -> usize {
        self.exact.len() + self.domains.len() + self.ips.len() + self.cidrs.len() + self.other.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn hit(&self, kind: Kind, value: &str, src: u32, now: i64) -> Option<Hit> {
        let s = self.sources.get(src as usize)?;
        if s.expires.is_some_and(|e| e <= now) {
            return None;
        }
        Some(Hit {
            kind,
            value: value.to_string(),
            source: s.clone(),
        })
    }

    /// Matches a URL: exact, host+path prefix, its host as a domain, or
    /// its literal IP.
    pub fn url(&self, raw: &str, now: i64) -> Vec<Hit> {
        let Some(u) = parse_url(raw) else { return Vec::new() };
        let (Some(key), Some(host)) = (url_key(&u), host_of(&u)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let exact = h(b'u', &key);
        if self.suppressed.contains(&exact) {
            return out;
        }
        if let Some(&s) = self.exact.get(&exact) {
            out.extend(self.hit(Kind::Url, u.as_str(), s, now));
        } else if !is_shared_hosting(&host) {
            let path = u.path();
            let mut cuts: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
            cuts.push(path.len());
            for &c in &cuts {
                for end in [c, c + 1] {
                    let Some(p) = path.get(..end.min(path.len())) else { continue };
                    if let Some(&s) = self.prefix.get(&h(b'p', &format!("{host}{p}"))) {
                        out.extend(self.hit(Kind::Url, u.as_str(), s, now));
                        break;
                    }
                }
                if !out.is_empty() {
                    break;
                }
            }
        }
        match host.parse::<IpAddr>().or_else(|_| host.trim_matches(['[', ']']).parse()) {
            Ok(ip) => out.extend(self.ip(ip, now)),
            Err(_) => out.extend(self.domain(&host, now)),
        }
        out
    }

    /// Matches a host against domain entries, from the host up to its
    /// registrable domain (exact host only on shared hosting).
    pub fn domain(&self, host: &str, now: i64) -> Vec<Hit> {
        let host = norm_domain(host);
        let Some(reg) = registrable(&host) else { return Vec::new() };
        let shared = is_shared_hosting(&host);
        let mut d = host.as_str();
        loop {
            let k = h(b'd', d);
            if self.suppressed.contains(&k) {
                return Vec::new();
            }
            if !SHARED_HOSTING.contains(&d)
                && let Some(&s) = self.domains.get(&k)
            {
                return self.hit(Kind::Domain, &host, s, now).into_iter().collect();
            }
            if shared || d == reg {
                return Vec::new();
            }
            match d.split_once('.') {
                Some((_, rest)) => d = rest,
                None => return Vec::new(),
            }
        }
    }

    /// Matches an address against IP and CIDR entries.
    pub fn ip(&self, ip: IpAddr, now: i64) -> Vec<Hit> {
        let v = ip.to_string();
        if self.suppressed.contains(&h(b'i', &v)) {
            return Vec::new();
        }
        if let Some(&s) = self.ips.get(&ip) {
            return self.hit(Kind::Ip, &v, s, now).into_iter().collect();
        }
        for (n, s) in &self.cidrs {
            if n.contains(&ip)
                && !self.suppressed.contains(&h(b'i', &n.to_string()))
                && let Some(hit) = self.hit(Kind::Cidr, &v, *s, now)
            {
                return vec![hit];
            }
        }
        Vec::new()
    }

    /// Matches an attachment hash.
    pub fn sha256(&self, hex: &str, now: i64) -> Vec<Hit> {
        self.other_hit(Kind::Sha256, b'h', hex, now)
    }

    /// Matches an email address.
    pub fn email(&self, addr: &str, now: i64) -> Vec<Hit> {
        self.other_hit(Kind::Email, b'e', addr, now)
    }

    fn other_hit(&self, kind: Kind, tag: u8, v: &str, now: i64) -> Vec<Hit> {
        let v = v.trim().to_ascii_lowercase();
        let k = h(tag, &v);
        if self.suppressed.contains(&k) {
            return Vec::new();
        }
        self.other.get(&k).and_then(|&s| self.hit(kind, &v, s, now)).into_iter().collect()
    }

    /// Matches one stored observable (see `domain::Observable`).
    pub fn observable(&self, kind: &str, value: &str, now: i64) -> Vec<Hit> {
        match Kind::parse(kind) {
            Some(Kind::Url) => self.url(value, now),
            Some(Kind::Domain) => self.domain(value, now),
            Some(Kind::Ip) => value.parse().map(|ip| self.ip(ip, now)).unwrap_or_default(),
            Some(Kind::Sha256) => self.sha256(value, now),
            Some(Kind::Email) => self.email(value, now),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
