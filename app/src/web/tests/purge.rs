//! Issue 17, item 5: the purge pages render a real job (its dry-run counts,
//! progress and per-message states) with the operator's text escaped, and a
//! job that does not exist is a 404, not an error.

use super::*;
use crate::store::{PurgeDone, PurgeHit};

#[tokio::test]
async fn purge_pages_render_a_real_job_escaped() {
    let f = fixture().await;
    let store = f.state.rt.store();
    let hostile = "<b>x</b>\" {5}";
    let counts = serde_json::json!([
        { "account": "alice", "mailbox": "INBOX", "matches": 2, "shadow": false, "error": null },
        { "account": "bob", "mailbox": null, "matches": 0, "shadow": true, "error": "account bob is not running" },
    ]);
    let hits = (1..=2)
        .map(|uid| PurgeHit {
            account: "alice".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 9,
            uid,
        })
        .collect();
    let job = store
        .create_purge_job("subject", hostile, "admin:admin", counts, hits)
        .await
        .unwrap();
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let get = |p: &str| {
        req(&Method::GET, p, "127.0.0.1")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap()
    };
    let t = text(send(&f.app, get(&format!("/purge/{job}"))).await).await;
    assert!(t.contains("data-matches=\"2\"") && t.contains("not running"), "{t}");
    assert!(t.contains("id=\"purge-start\""), "a dry run offers the purge");
    assert!(!t.contains("<b>x</b>"), "the search text is escaped");
    store.start_purge(job, "admin:admin").await.unwrap().unwrap();
    let item = store.pending_purge_items("alice").await.unwrap().remove(0);
    let done = PurgeDone {
        state: "moved",
        detail: "moved".into(),
        eml_path: Some("/tmp/x.eml".into()),
        moved_to: Some(("Quarantine".into(), Some(4))),
    };
    store.finish_purge_item(&item, done).await.unwrap();
    let t = text(send(&f.app, get(&format!("/purge/{job}"))).await).await;
    assert!(t.contains("id=\"purge-progress\"") && t.contains("data-state=\"running\""), "{t}");
    assert!(!t.contains("id=\"purge-start\""), "a started job is not offered again");
    assert!(t.contains("/static/purge.js"));
    let list = text(send(&f.app, get("/purge")).await).await;
    assert!(
        list.contains(&format!("href=\"/purge/{job}\"")) && !list.contains("<b>x</b>"),
        "{list}"
    );
    assert_eq!(send(&f.app, get("/purge/999")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(send(&f.app, get("/api/purge/999")).await.status(), StatusCode::NOT_FOUND);
    let api = text(send(&f.app, get(&format!("/api/purge/{job}"))).await).await;
    let v: serde_json::Value = serde_json::from_str(&api).unwrap();
    assert_eq!((v["moved"].as_u64(), v["matched"].as_u64()), (Some(1), Some(2)), "{v}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
}
