//! Issue 17: learning progress (the lesson queue and each account's
//! bootstrap) is on the dashboard, on `/health` and on `/metrics`.

use super::*;
use crate::domain::MessageKey;
use crate::scan::learn::Class;
use crate::store::{BootItem, BootOutcome};

#[tokio::test]
async fn issue_17_bootstrap_progress_is_on_the_dashboard_health_and_metrics() {
    let f = fixture().await;
    let store = f.state.rt.store();
    let item = |uid| BootItem {
        key: MessageKey {
            account: "alice".into(),
            mailbox: "Junk".into(),
            uidvalidity: 1,
            uid,
        },
        class: Class::Spam,
    };
    store
        .begin_bootstrap("alice", 30, vec![item(1), item(2)], "2 in Junk as spam".into())
        .await
        .unwrap();
    let learned = BootOutcome::Learn {
        sha256: "f".repeat(64),
        message_id: None,
        eml_path: "/x.eml".into(),
    };
    assert!(store.finish_boot_item(&item(1), learned).await.unwrap());
    let (session, _) = login(&f.app, "127.0.0.1", PASSWORD).await.unwrap();
    let get = |p: &str| {
        req(&Method::GET, p, "127.0.0.1")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap()
    };
    let health: serde_json::Value = serde_json::from_str(&text(send(&f.app, get("/health")).await).await).unwrap();
    let b = &health["learning"]["bootstrap"][0];
    assert_eq!(
        (b["account"].as_str(), b["done"].as_u64(), b["total"].as_u64()),
        (Some("alice"), Some(1), Some(2)),
        "{health}"
    );
    assert_eq!(health["learning"]["lessons"]["pending"], 1, "{health}");
    let page = text(send(&f.app, get("/")).await).await;
    assert!(
        page.contains("data-bootstrap=\"alice\"") && page.contains("1 of 2 messages"),
        "{page}"
    );
    let metrics = text(send(&f.app, req(&Method::GET, "/metrics", "127.0.0.1").body(Body::empty()).unwrap()).await).await;
    assert!(
        metrics.contains("postern_bootstrap_messages{account=\"alice\",of=\"done\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("postern_lessons{state=\"pending\"} 1"), "{metrics}");
}
