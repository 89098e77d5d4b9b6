//! Each feed format read from a fixture shaped like the real download, and
//! garbage in each format refused.

use super::{BUILTIN, Format, builtin, display_url, parse};
use crate::intel::{FeedEntry, IntelError, Kind};

pub(super) const URLHAUS: &[u8] = include_bytes!("../../../tests/fixtures/feeds/urlhaus_csv_recent.csv");
pub(super) const OPENPHISH: &[u8] = include_bytes!("../../../tests/fixtures/feeds/openphish_feed.txt");
pub(super) const PHISHTANK: &[u8] = include_bytes!("../../../tests/fixtures/feeds/phishtank_online-valid.json");
pub(super) const THREATFOX: &[u8] = include_bytes!("../../../tests/fixtures/feeds/threatfox_recent.json");
pub(super) const BAZAAR: &[u8] = include_bytes!("../../../tests/fixtures/feeds/malwarebazaar_recent.csv");

const ALL: [(Format, &[u8]); 5] = [
    (Format::UrlhausCsv, URLHAUS),
    (Format::OpenPhishText, OPENPHISH),
    (Format::PhishTankJson, PHISHTANK),
    (Format::ThreatFoxJson, THREATFOX),
    (Format::MalwareBazaarCsv, BAZAAR),
];

fn e(kind: Kind, v: &str) -> FeedEntry {
    FeedEntry {
        kind,
        value: v.to_string(),
    }
}

fn urls(vs: &[&str]) -> Vec<FeedEntry> {
    vs.iter().map(|v| e(Kind::Url, v)).collect()
}

fn sorted(mut v: Vec<FeedEntry>) -> Vec<FeedEntry> {
    v.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
    v
}

fn format_err(format: Format, body: &[u8]) -> String {
    match parse(format, body) {
        Err(IntelError::Format { source_name, detail }) => {
            assert_eq!(source_name, format.source());
            detail
        }
        other => panic!("{format:?} accepted garbage: {other:?}"),
    }
}

#[test]
fn urlhaus_fixture_keeps_online_and_unknown_urls_and_drops_offline() {
    let got = parse(Format::UrlhausCsv, URLHAUS).unwrap();
    assert_eq!(
        got,
        urls(&[
            "http://192.0.2.44:37163/bin.sh",
            "https://dl.payload.test/invoice_2026.zip",
            "http://cdn.evil.example/wp-content/upgrade/load.php?id=7&s=a,b",
            "http://[2001:db8::5]:8080/i",
        ])
    );
    assert!(!got.iter().any(|x| x.value.contains("198.51.100.7")), "the offline row is skipped");
}

#[test]
fn urlhaus_reads_crlf_line_endings_the_same() {
    let crlf = String::from_utf8(URLHAUS.to_vec()).unwrap().replace('\n', "\r\n");
    assert_eq!(
        parse(Format::UrlhausCsv, crlf.as_bytes()).unwrap(),
        parse(Format::UrlhausCsv, URLHAUS).unwrap()
    );
}

#[test]
fn openphish_fixture_is_one_url_per_line() {
    assert_eq!(
        parse(Format::OpenPhishText, OPENPHISH).unwrap(),
        urls(&[
            "https://login.bank.example/secure/verify.php",
            "http://203.0.113.9/office365/index.html",
            "https://account-update.test/",
            "https://wallet.example.test/connect?ref=a1&lang=en",
            "http://mail-box.phish.test/owa/auth/logon.aspx?replaceCurrent=1",
        ])
    );
}

#[test]
fn openphish_skips_an_isolated_bad_line() {
    let body = b"https://a.example/x\nnot a url\nhttps://b.example/y\nftp://c.example/z\nhttps://c.example/\n";
    assert_eq!(
        parse(Format::OpenPhishText, body).unwrap(),
        urls(&["https://a.example/x", "https://b.example/y", "https://c.example/"])
    );
}

#[test]
fn phishtank_fixture_keeps_verified_online_phish() {
    assert_eq!(
        parse(Format::PhishTankJson, PHISHTANK).unwrap(),
        urls(&[
            "https://secure-login.bank.example/signin/",
            "http://198.51.100.23/paypal/webscr.php?cmd=_login",
            "https://xn--pple-43d.example/id/verify",
        ])
    );
}

#[test]
fn phishtank_drops_unverified_records() {
    let body = br#"[{"phish_id":1,"url":"https://a.example/","verified":"no","online":"yes"},
                   {"phish_id":2,"url":"https://b.example/","verified":"yes","online":"yes"}]"#;
    assert_eq!(parse(Format::PhishTankJson, body).unwrap(), urls(&["https://b.example/"]));
}

#[test]
fn threatfox_fixture_maps_each_ioc_type() {
    let got = parse(Format::ThreatFoxJson, THREATFOX).unwrap();
    assert_eq!(
        sorted(got),
        sorted(vec![
            e(Kind::Ip, "203.0.113.50"),
            e(Kind::Ip, "2001:db8::10"),
            e(Kind::Domain, "panel.c2-host.test"),
            e(Kind::Url, "https://update.cdn-loader.example/gate.php"),
            e(Kind::Sha256, "e347ac37e6cd395f6d2688a0da76d78fd06811ffa988ac3d0949981e8eb62a6d"),
        ]),
        "md5 and sha1 IOCs are skipped"
    );
}

#[test]
fn threatfox_strips_ports_from_every_address_form_and_lowercases_hashes() {
    let body = br#"{
        "1": [{"ioc_value": "2001:db8::7:8080", "ioc_type": "ip:port"}],
        "2": [{"ioc_value": "192.0.2.9:53", "ioc_type": "ip:port"}],
        "3": [{"ioc_value": "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", "ioc_type": "sha256_hash"}],
        "4": [{"ioc_value": "x", "ioc_type": "sha3_384_hash"}]
    }"#;
    assert_eq!(
        parse(Format::ThreatFoxJson, body).unwrap(),
        vec![
            e(Kind::Ip, "2001:db8::7"),
            e(Kind::Ip, "192.0.2.9"),
            e(Kind::Sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"),
        ]
    );
}

#[test]
fn malwarebazaar_fixture_yields_lowercase_sha256() {
    assert_eq!(
        parse(Format::MalwareBazaarCsv, BAZAAR).unwrap(),
        vec![
            e(Kind::Sha256, "fb35a1fc060633ca4320ebe1ad88f7dfc59acd4d81771b4188983d83a31f2ba5"),
            e(Kind::Sha256, "009c59ebec650c353ecc473dd500b556ece9e65dde970ac28292ac09001fd671"),
            e(Kind::Sha256, "faa55f7b153ea387833278aefb0a04dbba04a12fe60ae4e61d9543de87f7a31a"),
        ]
    );
}

#[test]
fn malwarebazaar_skips_an_isolated_row_whose_hash_is_not_sha256() {
    let text = String::from_utf8(BAZAAR.to_vec()).unwrap().replacen(
        "009c59ebec650c353ecc473dd500b556ece9e65dde970ac28292ac09001fd671",
        "009c59ebec650c353ecc473dd500b556",
        1,
    );
    assert_eq!(parse(Format::MalwareBazaarCsv, text.as_bytes()).unwrap().len(), 2);
}

#[test]
fn empty_but_valid_feeds_are_empty_not_errors() {
    let urlhaus_head = b"################\n# abuse.ch URLhaus Database Dump (CSV - recent URLs only) #\n#\n# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n";
    let bazaar_head = b"#######\n# MalwareBazaar recent malware samples (CSV) #\n#\n";
    for (format, body) in [
        (Format::UrlhausCsv, &urlhaus_head[..]),
        (Format::MalwareBazaarCsv, &bazaar_head[..]),
        (Format::OpenPhishText, b"\n"),
        (Format::PhishTankJson, b"[]"),
        (Format::ThreatFoxJson, b"{}"),
    ] {
        assert_eq!(parse(format, body).unwrap(), vec![], "{format:?}");
    }
}

#[test]
fn html_error_pages_and_binary_junk_are_errors_in_every_format() {
    let html = b"<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx</center>\n</body>\n</html>\n";
    // A gzip header: what arrives when compression is not undone.
    let junk = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xed\xbd\x07`\x1cI\x96%&/m\xca{\x7fJ\xf5J\xd7\xe0t\xa1\x08";
    for (format, _) in ALL {
        format_err(format, html);
        let why = format_err(format, junk);
        assert!(why.contains("UTF-8"), "{why}");
    }
}

#[test]
fn truncated_json_is_an_error() {
    for (format, body) in [(Format::PhishTankJson, PHISHTANK), (Format::ThreatFoxJson, THREATFOX)] {
        format_err(format, &body[..body.len() / 2]);
    }
}

#[test]
fn json_of_the_wrong_shape_is_an_error() {
    format_err(Format::PhishTankJson, b"{}");
    format_err(Format::PhishTankJson, br#"[{"phish_id": 1, "link": "https://a.example/"}]"#);
    format_err(Format::ThreatFoxJson, b"[]");
    // What abuse.ch answers instead of an export when a request is refused.
    format_err(Format::ThreatFoxJson, br#"{"query_status": "unknown_auth_key"}"#);
}

#[test]
fn csv_with_the_wrong_columns_is_an_error() {
    let other_header = b"# id,dateadded,link,status\n\"1\",\"2026-11-20 10:00:00\",\"http://a.example/\",\"online\"\n";
    assert!(format_err(Format::UrlhausCsv, other_header).contains("column header"));
    let short_rows = String::from_utf8(URLHAUS.to_vec())
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with('#') {
                l.to_string()
            } else {
                l.split("\",\"").take(4).collect::<Vec<_>>().join("\",\"")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(format_err(Format::UrlhausCsv, short_rows.as_bytes()).contains("fields"));
    // URLhaus rows under the MalwareBazaar header.
    let comments = |body: &[u8], keep: bool| {
        String::from_utf8(body.to_vec())
            .unwrap()
            .lines()
            .filter(|l| l.starts_with('#') == keep)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let swapped = format!("{}\n{}\n", comments(BAZAAR, true), comments(URLHAUS, false));
    format_err(Format::MalwareBazaarCsv, swapped.as_bytes());
    // Rows without any comment header at all.
    format_err(Format::MalwareBazaarCsv, b"\"2026-11-20 10:04:39\", \"fb35\"\n");
    format_err(Format::UrlhausCsv, b"");
}

#[test]
fn a_text_feed_of_mostly_non_urls_is_an_error() {
    format_err(
        Format::OpenPhishText,
        b"Service temporarily unavailable\nPlease retry later\nhttps://openphish.com/\n",
    );
}

#[test]
fn builtin_feeds_have_their_real_urls_and_keys() {
    for name in BUILTIN {
        assert_eq!(builtin(name, None, None, None).unwrap().name, *name);
    }
    assert!(builtin("nope", None, None, None).is_none());
    let u = builtin("urlhaus", None, None, Some("k1")).unwrap();
    assert_eq!(
        (u.format, u.url.as_str()),
        (Format::UrlhausCsv, "https://urlhaus.abuse.ch/downloads/csv_recent/")
    );
    assert_eq!(u.headers, vec![("Auth-Key".to_string(), "k1".to_string())]);
    let t = builtin("threatfox", None, None, Some("k2")).unwrap();
    assert_eq!(t.url, "https://threatfox.abuse.ch/export/json/recent/");
    assert_eq!(t.headers, vec![("Auth-Key".to_string(), "k2".to_string())]);
    let m = builtin("malwarebazaar", None, None, None).unwrap();
    assert_eq!(
        (m.format, m.url.as_str()),
        (Format::MalwareBazaarCsv, "https://bazaar.abuse.ch/export/csv/recent/")
    );
    assert!(m.headers.is_empty());
    let o = builtin("openphish", None, Some("pt"), Some("ab")).unwrap();
    assert_eq!(o.url, "https://openphish.com/feed.txt");
    assert!(o.headers.is_empty(), "an abuse.ch key is not sent to OpenPhish");
    assert_eq!(
        builtin("phishtank", None, None, None).unwrap().url,
        "http://data.phishtank.com/data/online-valid.json"
    );
    let p = builtin("phishtank", None, Some("s3cr3t"), Some("ab")).unwrap();
    assert_eq!(p.url, "http://data.phishtank.com/data/s3cr3t/online-valid.json");
    assert!(p.headers.is_empty());
    assert_eq!(
        builtin("phishtank", None, Some("a/b?c"), None).unwrap().url,
        "http://data.phishtank.com/data/a%2Fb%3Fc/online-valid.json",
        "a key cannot change the path"
    );
    assert_eq!(
        builtin("urlhaus", Some("https://mirror.example/u.csv"), None, None).unwrap().url,
        "https://mirror.example/u.csv"
    );
    assert!(builtin("urlhaus", None, None, Some("  ")).unwrap().headers.is_empty());
}

#[test]
fn status_urls_hide_keys_and_credentials() {
    let p = builtin("phishtank", None, Some("s3cr3t"), None).unwrap();
    assert_eq!(display_url(&p), "http://data.phishtank.com/data/***/online-valid.json");
    let mut custom = builtin(
        "urlhaus",
        Some("https://user:pw@mirror.example/u.csv?key=s3cr3t&fmt=csv"),
        None,
        None,
    )
    .unwrap();
    assert_eq!(display_url(&custom), "https://***:***@mirror.example/u.csv?key=***&fmt=***");
    let keyed = builtin("threatfox", None, None, Some("abuse-s3cr3t")).unwrap();
    let debug = format!("{p:?} {keyed:?}");
    assert!(!debug.contains("s3cr3t") && debug.contains("Auth-Key"), "{debug}");
    custom.url = "https://mirror.example/u.csv".into();
    assert_eq!(display_url(&custom), "https://mirror.example/u.csv");
}

#[test]
fn format_names_round_trip() {
    for (format, _) in ALL {
        assert_eq!(Format::parse_name(format.as_str()), Some(format));
        assert_eq!(serde_json::to_string(&format).unwrap(), format!("\"{}\"", format.as_str()));
    }
}
