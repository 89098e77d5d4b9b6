//! Threat intelligence end to end, through the real Dovecot: a feed update
//! claws back mail that was delivered clean (also after the user filed it
//! elsewhere), and operator IOCs sent to the API match new mail, record
//! sightings, and respect expiry and the false-positive flag. The feed is
//! a local HTTP server serving URLhaus's real CSV format.

use crate::common::client::TestClient;
use crate::common::fixture_http::FixtureHttp;
use crate::common::harness::account;
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{audit_rows_at_least, eventually, unique};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// URLhaus `csv_recent` with these URLs online.
fn urlhaus(urls: &[&str]) -> String {
    let mut s = String::from(
        "################################################################\n\
         # abuse.ch URLhaus Database Dump (CSV - recent URLs only)      #\n\
         # Last updated: 2026-11-22 10:00:05 (UTC)                      #\n\
         #                                                              #\n\
         # Terms Of Use: https://urlhaus.abuse.ch/api/                  #\n\
         # For questions please contact urlhaus [at] abuse.ch           #\n\
         ################################################################\n\
         #\n\
         # id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n",
    );
    for (i, u) in urls.iter().enumerate() {
        s.push_str(&format!(
            "\"{id}\",\"2026-11-22 09:58:07\",\"{u}\",\"online\",\"2026-11-22 09:58:07\",\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/{id}/\",\"tester\"\n",
            id = 3_300_000 + i
        ));
    }
    s
}

fn with_link(id: &str, subject: &str, link: &str) -> Vec<u8> {
    format!(
        "From: Friend <friend@partner.test>\r\nTo: user@example.test\r\nSubject: {subject}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@test.postern>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe invoice is at {link} as discussed.\r\n"
    )
    .into_bytes()
}

async fn row(admin: &Admin, subject: &str) -> Value {
    eventually(WAIT, &format!("{subject} recorded"), || async move {
        admin.get("/api/messages?limit=200").await.1["items"]
            .as_array()
            .and_then(|v| v.iter().find(|m| m["subject"] == subject).cloned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_update_claws_back_delivered_mail_wherever_the_user_filed_it() {
    let d = shared();
    let (user, pass) = d.new_user("intel");
    let feed = FixtureHttp::start().await;
    feed.set("/downloads/csv_recent/", 200, urlhaus(&["http://unrelated.test/a.exe"]));
    let feed_url = feed.url("/downloads/csv_recent/");
    let p = WebPostern::start_with(
        vec![account("intel", d.imap_port, &user, &pass, &["INBOX"])],
        Scanners::Local,
        |s| {
            s.intel.feeds = vec![("urlhaus".into(), Some(feed_url))];
            s.intel.allow_loopback_for_tests = true;
        },
    )
    .await;
    let admin = Admin::login(&p.base).await;
    let (code, r) = admin.post("/api/feeds/refresh").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["feeds"][0]["entries"], 1, "{r}");
    p.wait_idling().await;

    let tag = unique("cb");
    let (stay, filed) = (format!("stays {tag}"), format!("filed {tag}"));
    let (bad1, bad2) = (
        format!("https://files-{tag}.test/inv.zip"),
        format!("http://drop-{tag}.test/pay/now.php?id=7"),
    );
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &with_link(&format!("s-{tag}"), &stay, &bad1)).await;
    c.append("INBOX", None, &with_link(&format!("f-{tag}"), &filed, &bad2)).await;
    for s in [&stay, &filed] {
        assert_eq!(row(&admin, s).await["verdict"], "pass", "clean until the feed knows the links");
    }
    // The user files one message away before the feed learns about it.
    let archive = format!("Archive-{tag}");
    c.create(&archive).await;
    c.move_message("INBOX", &format!("f-{tag}"), &archive).await;

    feed.set(
        "/downloads/csv_recent/",
        200,
        urlhaus(&["http://unrelated.test/a.exe", &bad1, &format!("http://drop-{tag}.test/gone"), &bad2]),
    );
    let (code, r) = admin.post("/api/feeds/refresh").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["changes"][0]["added"], 3, "{r}");
    assert_eq!(r["rechecks_queued"], 2, "{r}");

    eventually(WAIT, "both messages in Quarantine", || async {
        let q = TestClient::connect(d.imap_port, &user, &pass).await.ids("Quarantine").await;
        (q.iter().any(|m| m.contains(&format!("s-{tag}"))) && q.iter().any(|m| m.contains(&format!("f-{tag}")))).then_some(())
    })
    .await;
    assert!(c.ids("INBOX").await.iter().all(|m| !m.contains(&tag)), "gone from INBOX");
    assert!(c.ids(&archive).await.is_empty(), "gone from the user's folder");

    let rows = audit_rows_at_least(p.rt.store(), "intel", "retro_quarantine", 2).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert!(
            r.detail.contains("feed urlhaus") && r.detail.contains("INTEL_URL"),
            "reason and indicator in the audit: {}",
            r.detail
        );
    }
    assert!(rows.iter().any(|r| r.detail.contains(&format!("found in {archive}"))), "{rows:?}");
    let moved = row(&admin, &filed).await;
    assert_eq!(
        (moved["verdict"].as_str(), moved["quarantined"].as_bool()),
        (Some("quarantine"), Some(true)),
        "{moved}"
    );
    let sightings = p.rt.store().message_sightings(moved["id"].as_i64().unwrap()).await.unwrap();
    assert!(
        sightings
            .iter()
            .any(|(src, _, kind, v)| src == "urlhaus" && kind == "url" && v.contains(&format!("drop-{tag}"))),
        "{sightings:?}"
    );

    // A feed server that breaks keeps the last good data.
    feed.set("/downloads/csv_recent/", 500, "oops");
    let (_, r) = admin.post("/api/feeds/refresh").await;
    assert_eq!(r["feeds"][0]["entries"], 4, "{r}");
    assert!(r["feeds"][0]["last_error"].is_string(), "{r}");
    feed.set("/downloads/csv_recent/", 200, "<html><body>maintenance</body></html>");
    let (_, r) = admin.post("/api/feeds/refresh").await;
    assert_eq!(r["feeds"][0]["entries"], 4, "{r}");
    let (_, status) = admin.get("/api/feeds").await;
    assert_eq!(status["indexed"], 4, "{status}");
    let (_, health) = admin.get("/health").await;
    let comp = health["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "feed:urlhaus")
        .cloned();
    let comp = comp.unwrap_or_else(|| panic!("feed on /health: {health}"));
    assert_eq!(comp["ok"], false, "the last download failed: {comp}");
    assert!(comp["detail"].as_str().unwrap().starts_with("4 entries kept"), "{comp}");
    let metrics = reqwest::get(format!("{}/metrics", p.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("postern_feed_entries{feed=\"urlhaus\"} 4"), "{metrics}");
    assert!(metrics.contains("postern_feed_up{feed=\"urlhaus\"} 0"), "{metrics}");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indicators_from_the_api_match_new_mail_with_sightings_expiry_and_false_positives() {
    let d = shared();
    let (user, pass) = d.new_user("ioc");
    let p = WebPostern::start(vec![account("ioc", d.imap_port, &user, &pass, &["INBOX"])], Scanners::Local).await;
    let admin = Admin::login(&p.base).await;
    p.wait_idling().await;
    let tag = unique("ioc");
    let (live, expired, fp) = (format!("live-{tag}.test"), format!("old-{tag}.test"), format!("fp-{tag}.test"));
    let (code, r) = admin
        .send(
            Method::POST,
            "/api/indicators",
            json!([
                {"type": "domain", "value": live, "source": "soc", "confidence": 90, "severity": "high"},
                {"type": "domain", "value": expired, "source": "soc", "expires_at": "2020-01-01T00:00:00Z"},
                {"type": "domain", "value": fp, "source": "soc", "false_positive": true},
            ]),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let live_id = r["ids"][0].as_i64().unwrap();
    let (code, r) = admin
        .send(Method::POST, "/api/indicators", json!({"type": "ip", "value": "not-an-ip"}))
        .await;
    assert_eq!(code, 400, "{r}");

    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    for (id, host) in [("a", &live), ("b", &expired), ("c", &fp)] {
        let link = format!("https://www.{host}/login");
        c.append("INBOX", None, &with_link(&format!("{id}-{tag}"), &format!("{id} {tag}"), &link))
            .await;
    }
    let hit = row(&admin, &format!("a {tag}")).await;
    assert_eq!(hit["verdict"], "quarantine", "{hit}");
    assert_eq!(
        row(&admin, &format!("b {tag}")).await["verdict"],
        "pass",
        "an expired indicator does not match"
    );
    assert_eq!(
        row(&admin, &format!("c {tag}")).await["verdict"],
        "pass",
        "a false positive suppresses the match"
    );

    let (code, s) = admin.get(&format!("/api/indicators/{live_id}/sightings")).await;
    assert_eq!(code, 200);
    let s = s.as_array().unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(
        (s[0]["account"].as_str(), s[0]["value"].as_str()),
        (Some("ioc"), Some(format!("www.{live}").as_str()))
    );
    assert_eq!(s[0]["message"], hit["id"]);
    let (_, one) = admin.get(&format!("/api/indicators/{live_id}")).await;
    assert_eq!(one["sightings"], 1, "{one}");

    let (code, _) = admin.send(Method::DELETE, &format!("/api/indicators/{live_id}"), json!({})).await;
    assert_eq!(code, 200);
    let (_, list) = admin.get("/api/indicators").await;
    assert!(list.as_array().unwrap().iter().all(|i| i["id"] != live_id), "deleted");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_yara_rules_claw_back_mail_they_now_match() {
    let d = shared();
    let (user, pass) = d.new_user("yara");
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("base.yar"), "rule Never { condition: false }\n").unwrap();
    let dir = rules.path().to_path_buf();
    let p = WebPostern::start_with(vec![account("yara", d.imap_port, &user, &pass, &["INBOX"])], Scanners::Local, |s| {
        s.scan.yara_dir = Some(dir);
        s.scan.yara_reload = Duration::from_secs(3600);
    })
    .await;
    let admin = Admin::login(&p.base).await;
    p.wait_idling().await;
    p.rt.intel_tick().await.unwrap();
    let tag = unique("yr");
    let marker = format!("ZEBRA{}", tag.replace('x', ""));
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &with_link(&format!("y-{tag}"), &format!("y {tag}"), &marker))
        .await;
    assert_eq!(row(&admin, &format!("y {tag}")).await["verdict"], "pass");

    let rule = format!("rule Campaign {{ meta: severity = \"high\" strings: $m = \"{marker}\" condition: $m }}\n");
    std::fs::write(rules.path().join("campaign.yar"), rule).unwrap();
    p.rt.intel_tick().await.unwrap();
    eventually(WAIT, "message clawed back into Quarantine", || async {
        let q = TestClient::connect(d.imap_port, &user, &pass).await.ids("Quarantine").await;
        q.iter().any(|m| m.contains(&format!("y-{tag}"))).then_some(())
    })
    .await;
    let rows = audit_rows_at_least(p.rt.store(), "yara", "retro_quarantine", 1).await;
    assert!(rows.len() == 1 && rows[0].detail.starts_with("YARA rules changed"), "{rows:?}");
    assert!(rows[0].detail.contains("YARA_MATCH_HIGH"), "{rows:?}");
    p.stop().await;
}
