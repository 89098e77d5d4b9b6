//! Issue 20: the attacks page, its API and CSV exports, on stored log-watch
//! rows. User names in the log are the attacker's choice: the page escapes
//! them and the exports neutralise spreadsheet formulas.

use super::*;
use crate::domain::NewIndicator;
use crate::logwatch::parse::{AuthEvent, Outcome, Service};
use crate::store::AttackRecord;

/// The fixture's clock: 2026-11-22T10:00:00Z.
const NOW: i64 = 1_795_341_600;
const EVIL: &str = "=HYPERLINK(\"http://evil.test\",\"<b>x</b>\")";

#[tokio::test]
async fn issue_20_attacks_page_api_and_exports_show_the_attackers_safely() {
    let f = fixture().await;
    let store = f.state.rt.store();
    let event = |user: &str| AuthEvent {
        at: NOW - 60,
        service: Service::Imap,
        outcome: Outcome::Failed,
        ip: "203.0.113.9".parse().unwrap(),
        user: Some(user.into()),
        attempts: 1,
    };
    let attack = AttackRecord {
        at: NOW - 60,
        kind: "spray_users".into(),
        ip: Some("203.0.113.9".into()),
        count: 3,
        country: Some("NL".into()),
        asn: Some(64500),
        detail: "password spraying from 203.0.113.9: 3 user names tried".into(),
        indicator: Some(NewIndicator {
            kind: "ip".into(),
            value: "203.0.113.9".into(),
            source: "logwatch".into(),
            confidence: 85,
            severity: "high".into(),
            expires_at: Some("2026-11-29T10:00:00Z".into()),
            false_positive: false,
            note: None,
        }),
        ..Default::default()
    };
    store
        .logwatch_commit("mail.log", None, vec![event("alice"), event("bob"), event(EVIL)], vec![attack])
        .await
        .unwrap();
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let get = |p: &str| {
        req(&Method::GET, p, "127.0.0.1")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap()
    };

    let page = text(send(&f.app, get("/attacks?days=7")).await).await;
    assert!(
        page.contains("<svg") && page.contains("203.0.113.9") && page.contains("AS64500"),
        "{page}"
    );
    assert!(
        page.contains("&lt;b&gt;x&lt;") && !page.contains("<b>x</b>"),
        "user names are escaped"
    );
    assert!(page.contains("href=\"/export/attempts.csv?days=7\""), "exports keep the filters");

    let api: serde_json::Value = serde_json::from_str(&text(send(&f.app, get("/api/attacks?days=7")).await).await).unwrap();
    let a = &api["attackers"][0];
    assert_eq!(
        (a["ip"].as_str(), a["attempts"].as_i64(), a["users"].as_i64()),
        (Some("203.0.113.9"), Some(3), Some(3))
    );
    assert_eq!(a["ioc"], "active");
    assert_eq!(api["users"].as_array().unwrap().len(), 3);
    let r = send(&f.app, get("/api/attacks?ip=not-an-address")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = send(&f.app, get("/export/attempts.csv?days=7&user=alice")).await;
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let csv = text(r).await;
    assert_eq!(csv.lines().count(), 2, "only alice's attempt: {csv}");
    let csv = text(send(&f.app, get("/export/attempts.csv?days=7")).await).await;
    assert!(csv.contains("\"'=HYPERLINK("), "the formula is neutralised: {csv}");
    let csv = text(send(&f.app, get("/export/attackers.csv?days=7&country=nl")).await).await;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "ip,attempts,users,alerts,country,asn,as_org,first_seen,last_seen,ioc,ioc_expires"
    );
    assert!(rows[1].starts_with("203.0.113.9,3,3,1,NL,64500,,"), "{csv}");
    let csv = text(send(&f.app, get("/export/attackers.csv?days=7&country=DE")).await).await;
    assert_eq!(csv.lines().count(), 1, "the country filter applies: {csv}");
}
