//! Shared test plumbing: the Dovecot stack, a raw test IMAP client, a
//! fault-injecting TCP proxy and an in-process Postern.
#![allow(dead_code)]

pub mod client;
pub mod fixture_http;
pub mod harness;
pub mod mutate;
pub mod oauth_mock;
pub mod proxy;
pub mod receiver;
pub mod rspamd;
pub mod servers;
pub mod smtp_sink;
pub mod stack;
pub mod web;

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A synthetic message. `from` decides the built-in policy's verdict in tests
/// (`@evil.test` is blocked).
pub fn mail(from: &str, subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Test <{from}>\r\nTo: user@example.test\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}@test.postern>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Body of {subject}.\r\n"
    )
    .into_bytes()
}

/// A unique suffix for names in one test run.
/// Waits until the store holds at least `n` audit rows of `event` for
/// `account`. Postern writes the outcome of a move after the IMAP command
/// returns, so a test that saw the mailbox change must still wait for the
/// row that records it.
/// Waits until `account` has a pending action, then checks it is still
/// the one pending after several passes of the action runner (every
/// 500 ms in the test tuning): it waits, rather than failing.
pub async fn pending_action_waits(store: &postern::store::Store, account: &str) {
    eventually(Duration::from_secs(60), "an action decided", || async {
        (!store.pending_intents(account).await.unwrap().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(store.pending_intents(account).await.unwrap().len(), 1, "still waiting, not failed");
}

pub async fn audit_rows_at_least(store: &postern::store::Store, account: &str, event: &str, n: usize) -> Vec<postern::store::AuditRow> {
    eventually(
        Duration::from_secs(30),
        &format!("{n} {event} audit row(s) for {account}"),
        || async {
            let rows = store.audit_rows(Some(account), Some(event), 100).await.ok()?;
            (rows.len() >= n).then_some(rows)
        },
    )
    .await
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{prefix}{}x{t}x{n}", std::process::id())
}

/// The local (non-network) scanners under the shipped policy, as the golden
/// fixtures and the fuzz targets see them.
pub fn local_pipeline(opts: postern::scan::InputOptions) -> postern::scan::Pipeline {
    let scanners = postern::scan::scanners::local(&postern::config::PolicyConfig::default(), &[]);
    postern::scan::Pipeline::new(scanners, postern::scan::Policy::default_policy().unwrap(), opts)
}
