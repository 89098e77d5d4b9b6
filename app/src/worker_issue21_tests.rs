//! Issue 21, item 2: one parse and one buffer per message, proven by
//! counting work (parses, buffers, status reads), never by timing.

use super::*;
use crate::clock::SystemClock;
use crate::config::{StartAt, TlsMode};
use crate::domain::{Finding, ScannerReport};
use crate::scan::{FailureMode, InputOptions, LiveDecider, Pipeline, Policy, ScanInput, Scanner};
use futures::future::BoxFuture;
use std::sync::Mutex;
use std::time::Duration;

/// Records the address of the raw buffer every scan sees.
#[derive(Default)]
struct SeesRaw(Mutex<Vec<usize>>);

impl Scanner for SeesRaw {
    fn id(&self) -> &'static str {
        "sees_raw"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    fn failure_mode(&self) -> FailureMode {
        FailureMode::Open
    }
    fn tags(&self) -> &'static [&'static str] {
        &[]
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        if let Ok(mut g) = self.0.lock() {
            g.push(Arc::as_ptr(&input.raw) as usize);
        }
        Box::pin(async { Ok(Vec::new()) })
    }
}

fn account() -> AccountConfig {
    AccountConfig {
        name: "a".into(),
        host: "h".into(),
        port: 993,
        tls: TlsMode::Implicit,
        tls_skip_verify: false,
        ca_file: None,
        tls_fingerprint: None,
        user: "u".into(),
        pass: "p".into(),
        oauth2: None,
        folders: vec!["INBOX".into()],
        quarantine_folder: "Q".into(),
        hold_folder: "H".into(),
        mode: Mode::Enforce,
        start_at: StartAt::New,
        digest: Default::default(),
        digest_to: None,
        junk_folder: Default::default(),
        flag_keyword: None,
        learn_from_folders: false,
        learn_bootstrap: None,
        report_folder: None,
    }
}

fn deps(dir: &std::path::Path, decider: Arc<dyn Decider>) -> Deps {
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(&dir.join("p.db"), &[7; 32], clock.clone()).unwrap();
    Deps {
        oauth: Arc::new(crate::oauth::TokenBroker::new(store.clone(), Default::default())),
        store,
        decider,
        tuning: Default::default(),
        eml_dir: dir.join("eml"),
        clock,
        events: tokio::sync::broadcast::channel(4).0,
        rescan_after: Vec::new(),
    }
}

fn key(uid: u32) -> MessageKey {
    MessageKey {
        account: "a".into(),
        mailbox: "INBOX".into(),
        uidvalidity: 1,
        uid,
    }
}

fn fetched(uid: u32, tag: &str) -> Fetched {
    let raw = format!(
        "From: Shop <news@shop.example>\r\nTo: a@example.org\r\nMessage-ID: <{tag}@issue21>\r\nSubject: one parse {tag}\r\n\r\nSee https://shop.example/{tag}\r\n"
    );
    Fetched {
        uid,
        raw: Arc::new(raw.into_bytes()),
        internal_date: None,
    }
}

const CX: Context<'static> = Context {
    observe_only: false,
    watch_since: "2026-01-01T00:00:00.000Z",
    junk: None,
};

#[tokio::test]
async fn a_message_is_parsed_once_and_its_bytes_are_never_copied() {
    let dir = tempfile::tempdir().unwrap();
    let sees = Arc::new(SeesRaw::default());
    let pipeline = Pipeline::new(vec![sees.clone()], Policy::default_policy().unwrap(), InputOptions::default());
    let e = deps(dir.path(), Arc::new(LiveDecider::new(pipeline)));
    // Both ways in: the backlog's prescan then process, and process alone.
    let (m1, m2) = (fetched(1, "prescanned"), fetched(2, "direct"));
    let pre = e.prescan(&[key(1)], std::slice::from_ref(&m1)).await;
    let r1 = e
        .process_scanned(&account(), key(1), &m1, CX, pre.into_iter().next())
        .await
        .unwrap();
    let r2 = e.process(&account(), key(2), &m2, CX).await.unwrap();
    assert!(matches!(r1, Processed::Decided { .. }) && matches!(r2, Processed::Decided { .. }));
    for m in [&m1, &m2] {
        // One parse: the envelope, scan input and observables share it.
        assert_eq!(crate::scan::prepared_parses(&m.raw), 1, "parses of one message");
    }
    // The scanner read the very buffer the fetch produced.
    let seen = sees.0.lock().unwrap().clone();
    assert_eq!(seen, vec![Arc::as_ptr(&m1.raw) as usize, Arc::as_ptr(&m2.raw) as usize]);
    // The envelope came from that parse.
    let row = e.store.message_status(&key(1)).await.unwrap();
    assert!(row.is_some());
}

#[tokio::test]
async fn a_stored_decision_is_moved_to_the_database_not_cloned() {
    let dir = tempfile::tempdir().unwrap();
    let sees = Arc::new(SeesRaw::default());
    let pipeline = Pipeline::new(vec![sees], Policy::default_policy().unwrap(), InputOptions::default());
    let e = deps(dir.path(), Arc::new(LiveDecider::new(pipeline)));
    let d = Decision {
        reports: vec![ScannerReport {
            scanner: "x".into(),
            critical: false,
            findings: Vec::new(),
            elapsed_ms: 1,
            error: None,
        }],
        reason: "r".into(),
        ..Default::default()
    };
    let (reports, reason) = (d.reports.as_ptr() as usize, d.reason.as_ptr() as usize);
    let new = NewMessage {
        key: key(9),
        meta: MessageMeta {
            sha256: "s".into(),
            ..Default::default()
        },
    };
    let r = e.store.record_decision_owned(new, d, None, false, None).await.unwrap();
    // The same allocations come back: nothing was copied for the write.
    assert_eq!(r.decision.reports.as_ptr() as usize, reports);
    assert_eq!(r.decision.reason.as_ptr() as usize, reason);
}
