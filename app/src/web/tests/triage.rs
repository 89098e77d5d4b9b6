//! Issue 22, item 0: triage on the dashboard: why a message was acted on,
//! true counts, sender lists from the drawer, accounts that round-trip
//! through the API, and a Health page where "off" is not "failing".

use super::*;
use crate::domain::{Decision, MessageKey, Verdict};
use crate::store::{MessageMeta, NewMessage};

fn new_message(uid: u32, from: &str, subject: &str) -> NewMessage {
    NewMessage {
        key: MessageKey {
            account: "alice".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 1,
            uid,
        },
        meta: MessageMeta {
            message_id: Some(format!("{uid}@triage.test")),
            sha256: format!("{uid:064x}"),
            size: 10,
            from: Some(from.into()),
            subject: Some(subject.into()),
            internal_date: None,
        },
    }
}

async fn decide(f: &Fixture, uid: u32, subject: &str, verdict: Verdict, tags: &[&str], score: f64, observe_only: bool) -> i64 {
    let d = Decision {
        verdict,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        reason: format!("score {score:.1}"),
        score,
        ..Default::default()
    };
    let m = new_message(uid, "x@triage.example", subject);
    f.state
        .rt
        .store()
        .record_decision(&m, &d, None, observe_only, None)
        .await
        .unwrap()
        .0
}

async fn page(f: &Fixture, session: &str, path: &str) -> String {
    let r = send(
        &f.app,
        req(&Method::GET, path, "127.0.0.1")
            .header(header::COOKIE, session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    text(r).await
}

/// The table row of the message with this subject, as HTML.
fn row<'a>(html: &'a str, subject: &str) -> Option<&'a str> {
    let at = html.find(subject)?;
    let start = html[..at].rfind("<tr")?;
    let end = at + html[at..].find("</tr>")?;
    Some(&html[start..end])
}

#[tokio::test]
async fn issue_22_each_row_says_why_and_the_list_filters_by_it() {
    let f = fixture().await;
    decide(
        &f,
        20,
        "eicar-test",
        Verdict::Quarantine,
        &["AV_VIRUS", "LIST_SENDER_BLOCKED"],
        37.0,
        false,
    )
    .await;
    decide(&f, 21, "gtube-test", Verdict::Junk, &["RSPAMD_RESULT", "RSPAMD_SPAM"], 8.0, false).await;
    decide(&f, 22, "shadow-test", Verdict::Quarantine, &["AI_PHISH"], 20.0, true).await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let all = page(&f, &session, "/").await;
    // The seeded message is a blocked sender with score 0: it says so.
    assert!(row(&all, "hello").unwrap().contains("blocked sender"), "{all}");
    assert!(
        row(&all, "eicar-test").unwrap().contains(">virus<"),
        "EICAR is a virus, not only 37.0"
    );
    assert!(row(&all, "gtube-test").unwrap().contains(">spam<"));
    assert!(row(&all, "shadow-test").unwrap().contains(">phishing<"));
    let virus = page(&f, &session, "/?category=virus").await;
    assert!(
        row(&virus, "eicar-test").is_some() && row(&virus, "gtube-test").is_none(),
        "{virus}"
    );
    let blocked = page(&f, &session, "/?category=blocked").await;
    assert!(row(&blocked, "hello").is_some() && row(&blocked, "eicar-test").is_none());
    let observe = page(&f, &session, "/?category=observe").await;
    assert!(row(&observe, "shadow-test").is_some() && row(&observe, "eicar-test").is_none());
    assert!(
        observe.contains(r#"<option value="observe" selected>observe-only</option>"#),
        "the filter shows its choice"
    );
    // An unknown category matches nothing, not everything.
    assert!(row(&page(&f, &session, "/?category=nonsense").await, "eicar-test").is_none());
    // The API lists the same word.
    let (s, body) = api(&f, &session, "", Method::GET, "/api/messages?category=spam", serde_json::json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = v["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{body}");
    assert_eq!(rows[0]["category"], "spam");
}

#[tokio::test]
async fn issue_22_quarantined_today_counts_only_mail_in_quarantine_and_a_release_is_one_row() {
    let f = fixture().await;
    let kept = decide(&f, 30, "kept-in-quarantine", Verdict::Quarantine, &["AV_VIRUS"], 37.0, false).await;
    decide(&f, 31, "observed-only", Verdict::Quarantine, &["AV_VIRUS"], 37.0, true).await;
    let released = decide(&f, 32, "released-later", Verdict::Quarantine, &["AV_VIRUS"], 37.0, false).await;
    f.state
        .rt
        .store()
        .call(move |db, _| {
            db.execute("UPDATE messages SET disposition = 'released' WHERE id = ?1", [released])?;
            Ok(())
        })
        .await
        .unwrap();
    // The released copy coming back into INBOX is recorded as known.
    let back = new_message(33, "x@triage.example", "released-later");
    f.state
        .rt
        .store()
        .record_known_as(&back, "released_returned", format!("copy of #{released}"))
        .await
        .unwrap();
    let counts = f.state.rt.store().daily_counts("2026-11-22").await.unwrap();
    let today = counts.first().unwrap();
    // The seeded message and `kept`: the observed and the released ones are counted apart.
    assert_eq!((today.quarantine, today.observed, today.released), (2, 1, 1), "{today:?} (#{kept})");
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let html = page(&f, &session, "/").await;
    assert_eq!(html.matches("released-later").count(), 1, "one message, one row");
}

#[tokio::test]
async fn issue_22_the_drawer_names_the_sender_and_blocks_or_allows_from_there() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let drawer = page(&f, &session, "/messages/1/drawer").await;
    assert!(drawer.contains("From Mallory &lt;m@evil.example&gt;"), "{drawer}");
    assert!(drawer.contains(r#"value="block-domain">Block @evil.example<"#), "{drawer}");
    assert!(drawer.contains("blocked sender"), "the drawer says why too");
    // Block the domain with no reason: the entry records the message.
    let r = send(
        &f.app,
        req(&Method::POST, "/messages/1/sender-list", "127.0.0.1")
            .header(header::COOKIE, &session)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("_csrf={csrf}&action=block-domain&reason=")))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/lists?ok=list_added");
    let entries = f.state.rt.store().list_entries().await.unwrap();
    let e = entries.iter().find(|e| e.pattern == "@evil.example").expect("entry added");
    assert_eq!(e.kind, "block");
    assert!(e.reason.contains("#1"), "{}", e.reason);
}

#[tokio::test]
async fn issue_22_an_account_from_get_posts_back_and_a_second_watcher_is_warned() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let (s, body) = api(&f, &session, &csrf, Method::GET, "/api/accounts", serde_json::json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut a = all[0].clone();
    assert!(a["port"].is_number() && a["folders"].is_array(), "{a}");
    a["name"] = "alice2".into();
    a["pass"] = "another-secret".into();
    let (s, body) = api(&f, &session, &csrf, Method::POST, "/api/accounts", a).await;
    assert_eq!(s, StatusCode::OK, "GET's own shape is accepted: {body}");
    let stored = f.state.rt.store().account("alice2").await.unwrap().unwrap();
    assert_eq!((stored.port, stored.folders.clone()), (143, vec!["INBOX".to_string()]));
    assert!(body.contains("account alice watches too"), "{body}");
}

#[tokio::test]
async fn issue_22_testing_before_saving_keeps_a_broken_account_out() {
    let f = fixture().await;
    let (session, csrf) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    // Nothing listens on port 1.
    let a = serde_json::json!({ "name": "dave", "host": "127.0.0.1", "port": 1, "tls": "plain", "user": "d", "pass": "dave-secret", "test": true });
    let (s, body) = api(&f, &session, &csrf, Method::POST, "/api/accounts", a).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("not saved") && body.contains("Fix:"), "{body}");
    assert!(f.state.rt.store().account("dave").await.unwrap().is_none());
}

#[tokio::test]
async fn issue_22_the_health_page_lists_switched_off_scanners_apart_from_failures() {
    let f = fixture().await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let html = page(&f, &session, "/system").await;
    assert!(html.contains(">Health</a>"), "in the menu");
    // The fixture configures no Rspamd: that is off, not failing.
    let off = &html[html.find(r#"data-health="off""#).expect("an off section")..];
    assert!(off.contains("scanner:rspamd"), "{html}");
    assert!(!html.contains(r#"data-health="failing""#), "{html}");
}

#[tokio::test]
async fn issue_22_stats_break_down_by_category_and_account_with_the_release_rate() {
    let f = fixture().await;
    decide(&f, 40, "virus-one", Verdict::Quarantine, &["AV_VIRUS"], 37.0, false).await;
    let released = decide(&f, 41, "spam-released", Verdict::Quarantine, &["RSPAMD_SPAM"], 12.0, false).await;
    f.state
        .rt
        .store()
        .call(move |db, _| {
            db.execute("UPDATE messages SET disposition = 'released' WHERE id = ?1", [released])?;
            Ok(())
        })
        .await
        .unwrap();
    let b = f.state.rt.store().breakdown("2026-11-01").await.unwrap();
    let n = |label: &str| b.by_category.iter().find(|(l, _)| l == label).map_or(-1, |(_, n)| *n);
    // The seeded blocked sender, the virus and the (released) spam.
    assert_eq!((n("blocked sender"), n("virus"), n("spam"), n("phishing")), (1, 1, 1, 0), "{b:?}");
    assert_eq!((b.acted, b.released), (3, 1), "{b:?}");
    assert_eq!(b.by_account[0].name, "alice");
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let html = page(&f, &session, "/stats").await;
    assert!(html.contains("<strong>33.3%</strong> (1 of 3"), "{html}");
}

#[tokio::test]
async fn issue_22_the_quarantine_offers_bulk_release_and_learn_ham() {
    let f = fixture().await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let html = page(&f, &session, "/quarantine").await;
    assert!(html.contains(r#"data-bulk="release-learn""#), "{html}");
}
