//! The threat-intelligence scanner: every URL (shortened links followed
//! first), the sender, the sending IP and every attachment hash, looked up
//! in the current index of feeds and operator IOCs. Each hit carries an
//! [`IndicatorRef`] so the store records a sighting.

use super::Kind;
use super::index::{Hit, Index, Severity};
use super::unshorten::{Stop, Unshortener};
use crate::clock::SharedClock;
use crate::domain::{Finding, IndicatorRef};
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use arc_swap::ArcSwap;
use futures::future::{BoxFuture, join_all};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A listed URL (exact, or under a listed path).
pub const TAG_URL: &str = "INTEL_URL";
/// A listed domain (a link's host or the sender's domain).
pub const TAG_DOMAIN: &str = "INTEL_DOMAIN";
/// A listed IP or network (the sending IP or a link's literal IP).
pub const TAG_IP: &str = "INTEL_IP";
/// A listed attachment hash.
pub const TAG_HASH: &str = "INTEL_HASH";
/// A listed sender or Reply-To address.
pub const TAG_EMAIL: &str = "INTEL_EMAIL";
/// A hit on an indicator its source rates low (confidence < 50 or low severity).
pub const TAG_LOW_CONFIDENCE: &str = "INTEL_LOW_CONFIDENCE";
/// The sending IP attacked our own mail server's logins (an IOC that log
/// watch recorded, source [`crate::logwatch::IOC_SOURCE`]).
pub const TAG_AUTH_ATTACKER: &str = "INTEL_AUTH_ATTACKER";
/// A shortened link that redirects to a private or otherwise refused address.
pub const TAG_REDIRECT_REFUSED: &str = "URL_REDIRECT_REFUSED";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[
    TAG_URL,
    TAG_DOMAIN,
    TAG_IP,
    TAG_HASH,
    TAG_EMAIL,
    TAG_LOW_CONFIDENCE,
    TAG_AUTH_ATTACKER,
    TAG_REDIRECT_REFUSED,
];

/// Shortened links followed per message at most.
const MAX_EXPANSIONS: usize = 10;

/// The index the scanner reads; the runtime swaps in a new one on refresh.
pub type SharedIndex = Arc<ArcSwap<Index>>;

/// The scanner.
pub struct ThreatScanner {
    index: SharedIndex,
    unshortener: Option<Arc<Unshortener>>,
    clock: SharedClock,
    timeout: Duration,
}

impl ThreatScanner {
    /// A scanner over `index`, following shortened links when given an unshortener.
    pub fn new(index: SharedIndex, unshortener: Option<Arc<Unshortener>>, clock: SharedClock, timeout: Duration) -> Self {
        Self {
            index,
            unshortener,
            clock,
            timeout,
        }
    }
}

fn tag_for(h: &Hit) -> &'static str {
    // Log watch rates its own confidence; its tag is scored on its own.
    if h.source.name == crate::logwatch::IOC_SOURCE && h.source.ioc.is_some() && matches!(h.kind, Kind::Ip | Kind::Cidr) {
        return TAG_AUTH_ATTACKER;
    }
    if h.source.confidence < 50 || h.source.severity == Severity::Low {
        return TAG_LOW_CONFIDENCE;
    }
    match h.kind {
        Kind::Url => TAG_URL,
        Kind::Domain => TAG_DOMAIN,
        Kind::Ip | Kind::Cidr => TAG_IP,
        Kind::Sha256 => TAG_HASH,
        Kind::Email => TAG_EMAIL,
    }
}

/// Turns a hit into a finding that records which indicator matched.
pub fn finding(h: &Hit, via: Option<&str>) -> Finding {
    let who = match h.source.ioc {
        Some(id) => format!(
            "IOC #{id} from {} (confidence {}, {})",
            h.source.name,
            h.source.confidence,
            h.source.severity.as_str()
        ),
        None => format!("feed {}", h.source.name),
    };
    let via = via.map(|v| format!(" (via {v})")).unwrap_or_default();
    Finding {
        tag: tag_for(h).to_string(),
        detail: Some(format!("{} {}{via} listed by {who}", h.kind.as_str(), h.value)),
        indicator: Some(IndicatorRef {
            source: h.source.name.clone(),
            ioc: h.source.ioc,
            kind: h.kind.as_str().to_string(),
            value: h.value.clone(),
        }),
    }
}

impl ThreatScanner {
    fn lookups(&self, input: &ScanInput, ix: &Index, now: i64) -> Vec<Finding> {
        let mut out = Vec::new();
        for u in input.urls.iter().chain(&input.qr_urls) {
            out.extend(ix.url(u, now).iter().map(|h| finding(h, None)));
        }
        for a in [&input.from_addr, &input.reply_to].into_iter().flatten() {
            out.extend(ix.email(a, now).iter().map(|h| finding(h, None)));
        }
        if let Some(d) = &input.from_domain {
            out.extend(ix.domain(d, now).iter().map(|h| finding(h, None)));
        }
        if let Some(ip) = input.sender_ip {
            out.extend(ix.ip(ip, now).iter().map(|h| finding(h, None)));
        }
        for a in &input.attachments {
            let name = a.name.as_deref().unwrap_or("attachment");
            out.extend(ix.sha256(&a.sha256, now).iter().map(|h| finding(h, Some(name))));
        }
        out
    }

    async fn expanded(&self, input: &ScanInput, ix: &Index, now: i64) -> Vec<Finding> {
        let Some(un) = &self.unshortener else { return Vec::new() };
        let short: Vec<url::Url> = input
            .urls
            .iter()
            .chain(&input.qr_urls)
            .filter_map(|u| url::Url::parse(u).ok())
            .filter(|u| un.is_shortener(u))
            .take(MAX_EXPANSIONS)
            .collect();
        let expansions = join_all(short.iter().map(|u| un.expand(u))).await;
        let mut out = Vec::new();
        for x in expansions {
            let start = x.start.to_string();
            for hop in &x.hops {
                out.extend(ix.url(hop.as_str(), now).iter().map(|h| finding(h, Some(&start))));
            }
            if let Some(Stop::Refused(why)) = &x.stopped {
                out.push(Finding::new(
                    TAG_REDIRECT_REFUSED,
                    format!("{start} redirects to {}: {why}", x.final_url),
                ));
            }
        }
        out
    }
}

impl Scanner for ThreatScanner {
    fn id(&self) -> &'static str {
        crate::scan::registry::INTEL.id
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn failure_mode(&self) -> FailureMode {
        FailureMode::Open
    }

    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }

    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(async move {
            let ix = self.index.load_full();
            let now = self.clock.now().timestamp();
            let mut out = self.lookups(input, &ix, now);
            out.extend(self.expanded(input, &ix, now).await);
            let mut seen = BTreeSet::new();
            out.retain(|f| seen.insert((f.tag.clone(), f.detail.clone())));
            Ok(out)
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<String, ScanError>> {
        Box::pin(async move { Ok(format!("{} indicators indexed", self.index.load().len())) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::intel::FeedEntry;
    use crate::intel::index::Builder;
    use crate::intel::net::{NetPolicy, SafeClient};
    use crate::intel::unshorten::UnshortenOptions;
    use axum::http::{HeaderMap, StatusCode, header};

    fn index(entries: &[(Kind, &str)]) -> SharedIndex {
        let mut b = Builder::new();
        let e: Vec<FeedEntry> = entries
            .iter()
            .map(|(k, v)| FeedEntry {
                kind: *k,
                value: v.to_string(),
            })
            .collect();
        b.feed("urlhaus", &e);
        Arc::new(ArcSwap::from_pointee(b.build()))
    }

    /// A "shortener" on localhost: /a → the listed URL, /b → a private address.
    async fn shortener() -> String {
        let redirect = |to: &'static str| {
            move || async move {
                let mut h = HeaderMap::new();
                h.insert(header::LOCATION, to.parse().unwrap());
                (StatusCode::MOVED_PERMANENTLY, h)
            }
        };
        let app = axum::Router::new()
            .route("/a", axum::routing::get(redirect("https://evil.test/landing?id=1")))
            .route("/b", axum::routing::get(redirect("http://10.9.8.7/admin")));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        format!("http://localhost:{port}")
    }

    #[tokio::test]
    async fn listed_values_become_tags_with_the_indicator_recorded() {
        let ix = index(&[
            (Kind::Url, "http://bad.test/x"),
            (Kind::Ip, "203.0.113.7"),
            (Kind::Sha256, &"c".repeat(64)),
        ]);
        let s = ThreatScanner::new(ix, None, Arc::new(SystemClock), Duration::from_secs(5));
        let input = ScanInput {
            urls: vec!["http://bad.test/x".into(), "https://fine.test/".into()],
            sender_ip: "203.0.113.7".parse().ok(),
            attachments: vec![crate::scan::attach::Attachment {
                name: Some("a.exe".into()),
                sha256: "c".repeat(64),
                ..Default::default()
            }],
            ..Default::default()
        };
        let f = s.scan(&input).await.unwrap();
        let tags: Vec<&str> = f.iter().map(|f| f.tag.as_str()).collect();
        assert_eq!(tags, vec![TAG_URL, TAG_IP, TAG_HASH]);
        let i = f[0].indicator.as_ref().unwrap();
        assert_eq!((i.source.as_str(), i.kind.as_str(), i.ioc), ("urlhaus", "url", None));
        assert!(f[2].detail.as_deref().unwrap().contains("via a.exe"));
    }

    fn ioc(id: i64, value: &str, source: &str, confidence: u8) -> crate::intel::index::IocEntry {
        crate::intel::index::IocEntry {
            id,
            kind: Kind::Ip,
            value: value.into(),
            source: crate::intel::index::Source {
                name: source.into(),
                ioc: Some(id),
                confidence,
                severity: Severity::High,
                expires: None,
            },
            false_positive: false,
        }
    }

    #[tokio::test]
    async fn an_address_that_attacked_our_logins_has_its_own_tag_and_others_do_not() {
        let mut b = Builder::new();
        b.iocs(
            &[
                ioc(1, "203.0.113.66", crate::logwatch::IOC_SOURCE, 40),
                ioc(2, "198.51.100.5", "soc", 90),
            ],
            0,
        );
        let s = ThreatScanner::new(
            Arc::new(ArcSwap::from_pointee(b.build())),
            None,
            Arc::new(SystemClock),
            Duration::from_secs(5),
        );
        let from = |ip: &str| ScanInput {
            sender_ip: ip.parse().ok(),
            ..Default::default()
        };
        let f = s.scan(&from("203.0.113.66")).await.unwrap();
        assert_eq!(f.iter().map(|f| f.tag.as_str()).collect::<Vec<_>>(), vec![TAG_AUTH_ATTACKER]);
        assert_eq!(
            f[0].indicator.as_ref().and_then(|i| i.ioc),
            Some(1),
            "the sighting names the log watch IOC"
        );
        // The operator's own IOC on another address keeps its usual tag.
        let f = s.scan(&from("198.51.100.5")).await.unwrap();
        assert_eq!(f.iter().map(|f| f.tag.as_str()).collect::<Vec<_>>(), vec![TAG_IP]);
        // A newsletter from an address that never knocked on our server: nothing.
        let mail = |ip: &str| {
            ScanInput::parse(
                format!(
                    "Received: from mta-42.news.example.com (mta-42.news.example.com [{ip}]) by mx.example.org with ESMTPS id 1; Mon, 30 Nov 2026 09:00:00 +0000\r\n\
                     From: Example News <news@news.example.com>\r\nTo: reader@example.org\r\nSubject: This week at Example\r\n\
                     List-Unsubscribe: <https://news.example.com/u/1>\r\nContent-Type: text/plain\r\n\r\nOur weekly digest: https://news.example.com/w/48\r\n"
                )
                .into_bytes(),
                &crate::scan::InputOptions::default(),
            )
        };
        assert!(s.scan(&mail("192.0.2.42")).await.unwrap().is_empty());
        // The same mail handed over by the attacker (the trusted hop) is tagged.
        let f = s.scan(&mail("203.0.113.66")).await.unwrap();
        assert_eq!(f.iter().map(|f| f.tag.as_str()).collect::<Vec<_>>(), vec![TAG_AUTH_ATTACKER]);
        assert!(s.scan(&from("192.0.2.42")).await.unwrap().is_empty());
    }

    /// Every feed's real-format fixture, parsed and indexed: one entry of
    /// each kind it carries, put where a message would carry it, is a hit
    /// attributed to that feed.
    #[tokio::test]
    async fn each_feed_fixture_yields_hits_attributed_to_it() {
        use crate::intel::feeds::{Format, parse};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feeds");
        let feeds = [
            ("urlhaus", Format::UrlhausCsv, "urlhaus_csv_recent.csv"),
            ("openphish", Format::OpenPhishText, "openphish_feed.txt"),
            ("phishtank", Format::PhishTankJson, "phishtank_online-valid.json"),
            ("threatfox", Format::ThreatFoxJson, "threatfox_recent.json"),
            ("malwarebazaar", Format::MalwareBazaarCsv, "malwarebazaar_recent.csv"),
        ];
        for (name, format, file) in feeds {
            let entries = parse(format, &std::fs::read(dir.join(file)).unwrap()).unwrap();
            let mut b = Builder::new();
            b.feed(name, &entries);
            let s = ThreatScanner::new(
                Arc::new(ArcSwap::from_pointee(b.build())),
                None,
                Arc::new(SystemClock),
                Duration::from_secs(5),
            );
            let mut kinds = std::collections::BTreeSet::new();
            for e in entries.iter().filter(|e| kinds.insert(e.kind)) {
                let mut input = ScanInput::default();
                match e.kind {
                    Kind::Url => input.urls = vec![e.value.clone()],
                    Kind::Domain => input.urls = vec![format!("https://{}/x", e.value)],
                    Kind::Ip | Kind::Cidr => input.sender_ip = e.value.parse().ok(),
                    Kind::Sha256 => {
                        input.attachments = vec![crate::scan::attach::Attachment {
                            sha256: e.value.clone(),
                            ..Default::default()
                        }]
                    }
                    Kind::Email => input.from_addr = Some(e.value.clone()),
                }
                let f = s.scan(&input).await.unwrap();
                let hit = f.iter().find_map(|f| f.indicator.as_ref());
                assert_eq!(hit.map(|i| i.source.as_str()), Some(name), "{name}: {e:?} -> {f:?}");
            }
            assert!(!kinds.is_empty(), "{name}: fixture has entries");
        }
    }

    #[tokio::test]
    async fn shortened_links_are_followed_and_a_private_destination_is_flagged() {
        let base = shortener().await;
        let client = SafeClient::new(
            NetPolicy {
                allow_loopback_for_tests: true,
            },
            Duration::from_secs(5),
        )
        .unwrap();
        let opts = UnshortenOptions {
            extra_domains: vec!["localhost".into()],
            ..Default::default()
        };
        let un = Arc::new(Unshortener::new(client, opts));
        let ix = index(&[(Kind::Url, "https://evil.test/landing?id=1")]);
        let s = ThreatScanner::new(ix, Some(un), Arc::new(SystemClock), Duration::from_secs(10));
        let input = ScanInput {
            urls: vec![format!("{base}/a"), format!("{base}/b")],
            ..Default::default()
        };
        let f = s.scan(&input).await.unwrap();
        let hit = f.iter().find(|f| f.tag == TAG_URL).expect("the destination is listed");
        assert!(hit.detail.as_deref().unwrap().contains(&format!("via {base}/a")), "{hit:?}");
        let refused = f.iter().find(|f| f.tag == TAG_REDIRECT_REFUSED).expect("private redirect");
        assert!(refused.detail.as_deref().unwrap().contains("10.9.8.7"), "{refused:?}");
    }
}
