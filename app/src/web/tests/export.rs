//! Issue 22, item 5: CSV exports follow the page's filters, stream every
//! page of rows, and neutralise spreadsheet formulas.

use super::*;
use crate::domain::{Decision, MessageKey, Verdict};
use crate::store::{AuditEntry, MessageMeta, NewMessage};

async fn add_message(f: &Fixture, uid: u32, from: &str, subject: &str, verdict: Verdict) {
    let new = NewMessage {
        key: MessageKey {
            account: "alice".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 1,
            uid,
        },
        meta: MessageMeta {
            message_id: Some(format!("{uid}@export.test")),
            sha256: format!("{uid:064x}"),
            size: 10,
            from: Some(from.into()),
            subject: Some(subject.into()),
            internal_date: None,
        },
    };
    let d = Decision {
        verdict,
        reason: "test".into(),
        ..Default::default()
    };
    f.state.rt.store().record_decision(&new, &d, None, false, None).await.unwrap();
}

async fn get_csv(f: &Fixture, session: &str, path: &str) -> (Response<Body>, Vec<Vec<String>>) {
    let r = send(
        &f.app,
        req(&Method::GET, path, "127.0.0.1")
            .header(header::COOKIE, session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..])
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (Response::from_parts(parts, Body::empty()), rows)
}

#[tokio::test]
async fn message_export_keeps_the_filters_and_defuses_formulas() {
    let f = fixture().await;
    add_message(&f, 10, "=HYPERLINK(\"http://evil.example\")@x.example", "Invoice +1", Verdict::Pass).await;
    add_message(&f, 11, "a@b.example", "Invoice two", Verdict::Flag).await;
    add_message(&f, 12, "c@d.example", "Newsletter", Verdict::Pass).await;
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let (_, all) = get_csv(&f, &session, "/export/messages.csv").await;
    let (r, rows) = get_csv(&f, &session, "/export/messages.csv?q=Invoice&verdict=pass").await;
    assert_eq!(all.len(), 5, "{all:?}");
    assert_hardened(&r, "export");
    assert_eq!(r.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let disposition = r.headers()[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"postern-messages-2026-11-22.csv"),
        "{disposition}"
    );
    assert_eq!(rows[0][..6], ["id", "first_seen", "account", "mailbox", "from", "subject"]);
    assert_eq!(rows.len(), 2, "one row passes both filters: {rows:?} of {all:?}");
    assert_eq!(rows[1][4], "'=HYPERLINK(\"http://evil.example\")@x.example");
    assert_eq!(rows[1][5], "Invoice +1", "ordinary text is left alone");
    // The quarantine page's export holds only quarantined mail: the seeded
    // message, once its move is done.
    let store = f.state.rt.store();
    let intent = store.pending_intents("alice").await.unwrap().remove(0);
    let loc = Some(("Quarantine".to_string(), Some(7)));
    store
        .finish_intent(&intent, crate::store::IntentState::Done, loc, String::new())
        .await
        .unwrap();
    let (_, rows) = get_csv(&f, &session, "/export/messages.csv?quarantined=true").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][5], "<b>hello</b>");
}

#[tokio::test]
async fn exports_stream_every_page() {
    let f = fixture().await;
    for uid in 100..550 {
        add_message(&f, uid, "bulk@x.example", &format!("bulk {uid}"), Verdict::Pass).await;
    }
    for i in 0..450 {
        let mut e = AuditEntry::mailbox("alice", "INBOX", "test_event", format!("-{i}+1"));
        e.actor = "analyst:ann".into();
        f.state.rt.store().audit(e).await.unwrap();
    }
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let (_, rows) = get_csv(&f, &session, "/export/messages.csv?q=bulk").await;
    assert_eq!(rows.len(), 451, "three pages and the header");
    let ids: std::collections::HashSet<_> = rows[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(ids.len(), 450, "no row twice");
    let (_, rows) = get_csv(&f, &session, "/export/audit.csv?actor=analyst&event=test_event").await;
    assert_eq!(rows.len(), 451);
    assert!(
        rows[1..].iter().all(|r| r[2] == "analyst:ann" && r[8].starts_with("'-")),
        "{:?}",
        &rows[1]
    );
    let (_, rows) = get_csv(&f, &session, "/export/stats.csv?days=7").await;
    assert_eq!(rows.len(), 9, "header, 7 days, total: {rows:?}");
    assert_eq!(rows[8][0], "total");
    assert_eq!(rows[7][0], "2026-11-22");
    assert_eq!(rows[8][1], "450", "the bulk mail passed today");
}
