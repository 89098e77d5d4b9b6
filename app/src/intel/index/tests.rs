use super::*;

fn e(kind: Kind, v: &str) -> FeedEntry {
    FeedEntry { kind, value: v.into() }
}

fn ioc(id: i64, kind: Kind, v: &str, fp: bool, expires: Option<i64>) -> IocEntry {
    IocEntry {
        id,
        kind,
        value: v.into(),
        source: Source {
            name: "team".into(),
            ioc: Some(id),
            confidence: 80,
            severity: Severity::High,
            expires,
        },
        false_positive: fp,
    }
}

fn index() -> Index {
    let mut b = Builder::new();
    b.feed(
        "urlhaus",
        &[
            e(Kind::Url, "http://bad.test/dl/payload.exe"),
            e(Kind::Url, "https://compromised.test/wp-content/evil/"),
            e(Kind::Url, "https://someone.github.io/phish/login.html"),
        ],
    );
    b.feed(
        "threatfox",
        &[
            e(Kind::Domain, "c2.test"),
            e(Kind::Ip, "203.0.113.9"),
            e(Kind::Sha256, "AB".repeat(32).as_str()),
        ],
    );
    b.iocs(
        &[
            ioc(1, Kind::Cidr, "198.51.100.0/24", false, None),
            ioc(2, Kind::Email, "Boss@Fraud.test", false, None),
            ioc(3, Kind::Domain, "old.test", false, Some(40)),
            ioc(4, Kind::Domain, "c2.test", true, None),
            ioc(5, Kind::Domain, "github.io", false, None),
        ],
        50,
    );
    b.build()
}

#[test]
fn urls_match_exactly_or_by_prefix_off_shared_hosting() {
    let ix = index();
    assert_eq!(ix.url("HTTPS://BAD.test/dl/payload.exe#x", 0).len(), 1, "scheme and case ignored");
    assert_eq!(ix.url("http://bad.test/dl/payload.exe?v=2", 0).len(), 1, "same path, other query");
    assert_eq!(ix.url("https://compromised.test/wp-content/evil/x.php", 0).len(), 1);
    assert!(ix.url("https://compromised.test/wp-content/good/", 0).is_empty());
    assert!(ix.url("https://compromised.test/", 0).is_empty());
    assert_eq!(ix.url("https://someone.github.io/phish/login.html", 0).len(), 1);
    assert!(
        ix.url("https://someone.github.io/phish/login.html?a=1", 0).is_empty(),
        "exact only on shared hosting"
    );
    assert!(ix.url("https://other.github.io/", 0).is_empty(), "github.io itself never matches");
    assert_eq!(ix.url("http://203.0.113.9/x", 0)[0].kind, Kind::Ip);
}

#[test]
fn domains_ips_hashes_and_emails() {
    let ix = index();
    assert!(ix.domain("c2.test", 0).is_empty(), "false positive suppresses the feed's hit");
    assert!(ix.domain("old.test", 60).is_empty(), "expired before the build");
    assert_eq!(ix.ip("198.51.100.77".parse().unwrap(), 0)[0].source.ioc, Some(1));
    assert!(ix.ip("198.51.101.1".parse().unwrap(), 0).is_empty());
    assert_eq!(ix.sha256(&"ab".repeat(32), 0).len(), 1);
    assert_eq!(ix.email("boss@fraud.test", 0)[0].source.ioc, Some(2));
    assert_eq!(ix.observable("email", "BOSS@fraud.test", 0).len(), 1);
}

#[test]
fn subdomains_match_up_to_the_registrable_domain() {
    let mut b = Builder::new();
    b.feed("f", &[e(Kind::Domain, "evil.co.uk"), e(Kind::Domain, "co.uk")]);
    let ix = b.build();
    assert_eq!(ix.domain("a.b.evil.co.uk", 0).len(), 1);
    assert!(ix.domain("good.co.uk", 0).is_empty(), "a public suffix entry never matches");
}

#[test]
fn ioc_expiring_after_the_build_stops_matching() {
    let mut b = Builder::new();
    b.iocs(&[ioc(9, Kind::Domain, "soon.test", false, Some(1000))], 0);
    let ix = b.build();
    assert_eq!(ix.domain("soon.test", 999).len(), 1);
    assert!(ix.domain("soon.test", 1000).is_empty());
}
