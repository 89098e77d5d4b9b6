use super::*;
use crate::clock::TestClock;
use crate::intel::net::NetPolicy;
use crate::store::MessageSummary;
use axum::http::HeaderMap;
use std::sync::Arc;
use std::time::Duration;

type Got = Arc<std::sync::Mutex<Vec<(String, HeaderMap, serde_json::Value)>>>;

async fn receiver() -> (String, Got) {
    let got: Got = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, h: HeaderMap, body: axum::body::Bytes| {
        let g = g.clone();
        async move {
            g.lock()
                .unwrap()
                .push((uri.path().to_string(), h, serde_json::from_slice(&body).unwrap()));
            "ok"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (base, got)
}

fn summary(verdict: &str) -> MessageSummary {
    MessageSummary {
        id: 42,
        first_seen: "2026-11-22T10:00:00.000Z".into(),
        account: "alice".into(),
        mailbox: "INBOX".into(),
        from: Some("ceo@victim-corp.example".into()),
        subject: Some("Wire the money today".into()),
        verdict: Some(verdict.into()),
        score: Some(12.5),
        tags: Some("RSPAMD_REJECT".into()),
        status: "done".into(),
        location: Some("Quarantine".into()),
        quarantined: true,
        disposition: None,
        observe_only: false,
        category: None,
    }
}

fn notifier(base: &str, loopback_ok: bool, mask: bool) -> (Notifier, TestClock) {
    let clock = TestClock::new(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
    let settings = NotifySettings {
        ntfy_url: Some(format!("{base}/alerts")),
        ntfy_token: Some("tk_secret".into()),
        ntfy_verdicts: vec![Verdict::Quarantine, Verdict::Delete],
        webhook_url: Some(format!("{base}/hook")),
        webhook_secret: Some("s3cret".into()),
        webhook_verdicts: vec![Verdict::Flag, Verdict::Quarantine, Verdict::Delete],
        mask,
        alert_gap_mins: 60,
    };
    let client = SafeClient::new(
        NetPolicy {
            allow_loopback_for_tests: loopback_ok,
        },
        Duration::from_secs(5),
    )
    .unwrap();
    (Notifier::new(&settings, client, Arc::new(clock.clone())).unwrap(), clock)
}

fn verdict_notice(v: &str) -> Notice {
    Notice::about_message(NoticeKind::Verdict, &summary(v), format!("Postern: {v} alice"))
}

#[tokio::test]
async fn verdicts_reach_each_channel_by_its_filter_with_ntfy_priority_and_tags() {
    let (base, got) = receiver().await;
    let (n, _) = notifier(&base, true, false);
    for v in ["pass", "flag", "quarantine", "delete"] {
        n.verdict(verdict_notice(v)).await;
    }
    let got = got.lock().unwrap().clone();
    let ntfy: Vec<_> = got.iter().filter(|(p, _, _)| p == "/").collect();
    let hook: Vec<_> = got.iter().filter(|(p, _, _)| p == "/hook").collect();
    assert_eq!(ntfy.len(), 2, "ntfy: quarantine and delete only");
    assert_eq!(hook.len(), 3, "webhook: flag, quarantine, delete");
    assert_eq!(ntfy[0].2["topic"], "alerts");
    assert_eq!(
        (ntfy[0].2["priority"].as_u64(), ntfy[0].2["tags"][0].as_str()),
        (Some(4), Some("warning"))
    );
    assert_eq!(
        (ntfy[1].2["priority"].as_u64(), ntfy[1].2["tags"][0].as_str()),
        (Some(5), Some("rotating_light"))
    );
    assert_eq!(ntfy[0].1["authorization"], "Bearer tk_secret");
    assert!(ntfy[0].2["message"].as_str().unwrap().contains("Wire the money today"));
    assert_eq!(hook[0].2["verdict"], "flag");
    assert_eq!(hook[0].2["subject"], "Wire the money today");
    assert_eq!(hook[0].1["x-postern-event"], "verdict");
    // The signature covers the exact body the receiver got.
    let body = serde_json::to_vec(&hook[0].2).unwrap();
    assert_eq!(hook[0].1["x-postern-signature"].to_str().unwrap(), signature("s3cret", &body));
    assert_eq!(n.counters.sent[0].load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test]
async fn masking_hides_sender_and_subject_everywhere() {
    let (base, got) = receiver().await;
    let (n, _) = notifier(&base, true, true);
    n.verdict(verdict_notice("quarantine")).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    for (_, _, body) in &got {
        let text = body.to_string();
        assert!(!text.contains("Wire the money") && !text.contains("ceo@"), "{text}");
        assert!(text.contains("***@victim-corp.example"), "the domain stays for triage: {text}");
    }
    assert_eq!(got[1].2["subject"], "(hidden)");
}

#[tokio::test]
async fn alerts_are_rate_limited_per_kind_on_the_injected_clock() {
    let (base, got) = receiver().await;
    let (n, clock) = notifier(&base, true, false);
    let alert = || {
        Notice::plain(
            NoticeKind::ScannerUnhealthy,
            "scanner clamav is unhealthy".into(),
            "connection refused".into(),
        )
    };
    assert!(n.alert("scanner:clamav", alert()).await);
    assert!(!n.alert("scanner:clamav", alert()).await, "same kind within the gap");
    assert!(n.alert("scanner:rspamd", alert()).await, "another kind is not held back");
    clock.advance(chrono::Duration::minutes(59));
    assert!(!n.alert("scanner:clamav", alert()).await);
    clock.advance(chrono::Duration::minutes(1));
    assert!(n.alert("scanner:clamav", alert()).await, "after the gap");
    assert_eq!(got.lock().unwrap().len(), 6, "3 alerts × 2 channels");
    assert_eq!(n.counters.suppressed.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test]
async fn private_destinations_are_refused_by_the_safe_client() {
    let (base, got) = receiver().await;
    let (n, _) = notifier(&base, false, false);
    n.verdict(verdict_notice("delete")).await;
    assert!(got.lock().unwrap().is_empty(), "nothing reached 127.0.0.1");
    assert_eq!(n.counters.failed[0].load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(n.counters.failed[1].load(std::sync::atomic::Ordering::Relaxed), 1);
}
