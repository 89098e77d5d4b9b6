//! Faults: connections cut many times, a black-holed socket, a Dovecot
//! restart mid-stream, and a server that answers with BYE, NO and garbage.

use crate::common::client::TestClient;
use crate::common::harness::{Postern, account, tuning};
use crate::common::proxy::Proxy;
use crate::common::stack::{Dovecot, shared};
use crate::common::{eventually, mail, unique};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(60);

/// Every delivered message is recorded exactly once; evil ones are in
/// Quarantine exactly once, the rest still in INBOX; nothing vanished.
async fn assert_exactly_once(p: &Postern, port: u16, user: &str, pass: &str, evil: &BTreeSet<String>, ham: &BTreeSet<String>) {
    let total = evil.len() + ham.len();
    let rows = p.wait_done("a", total).await;
    assert_eq!(rows.len(), total, "one row per delivered message");
    let mids: BTreeSet<_> = rows.iter().filter_map(|r| r.message_id.clone()).collect();
    assert_eq!(mids.len(), total, "no message recorded twice");
    // Poll until the folders hold exactly what they should; on timeout,
    // report what they do hold (a duplicate or a miss, and where).
    let start = std::time::Instant::now();
    let (q, inbox) = loop {
        let mut c = TestClient::connect(port, user, pass).await;
        let q = c.ids("Quarantine").await;
        let i = c.ids("INBOX").await;
        if q.len() == evil.len() && i.len() == ham.len() {
            break (q, i);
        }
        if start.elapsed() > T {
            let rows = p.store.message_rows("a").await.unwrap();
            let pending = p.store.pending_intents("a").await.unwrap();
            panic!(
                "folders never settled: Quarantine {} (want {}), INBOX {} (want {})\nQ={q:?}\nI={i:?}\npending={pending:?}\nrows={rows:?}",
                q.len(),
                evil.len(),
                i.len(),
                ham.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let norm = |v: Vec<String>| -> BTreeSet<String> {
        v.into_iter()
            .map(|s| s.trim_start_matches("Message-ID:").trim().trim_matches(['<', '>']).to_string())
            .collect()
    };
    assert_eq!(&norm(q), evil, "each evil message quarantined exactly once");
    assert_eq!(&norm(inbox), ham, "ham untouched");
    let done = p.store.audit_rows(Some("a"), Some("action_done"), 10_000).await.unwrap();
    assert_eq!(done.len(), evil.len(), "exactly one action per evil message");
}

fn id(prefix: &str) -> String {
    unique(prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_cutting_connections_many_times_processes_each_message_once() {
    let d = shared();
    let (user, pass) = d.new_user("cut");
    let proxy = Proxy::start(d.imap_port).await;
    let p = Postern::start(vec![account("a", proxy.port, &user, &pass, &["INBOX"])], tuning(), None).await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let (mut evil, mut ham) = (BTreeSet::new(), BTreeSet::new());
    for i in 0..24 {
        let mid = id("cut");
        if i % 2 == 0 {
            c.append("INBOX", None, &mail("bad@evil.test", &format!("m{i}"), &mid)).await;
            evil.insert(format!("{mid}@test.postern"));
        } else {
            c.append("INBOX", None, &mail("ok@good.test", &format!("m{i}"), &mid)).await;
            ham.insert(format!("{mid}@test.postern"));
        }
        if i % 2 == 1 {
            proxy.cut_all();
            tokio::time::sleep(Duration::from_millis(30 + (i as u64 * 17) % 90)).await;
        }
    }
    for _ in 0..8 {
        proxy.cut_all();
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert_exactly_once(&p, d.imap_port, &user, &pass, &evil, &ham).await;
    assert!(
        proxy.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 12,
        "connections were really cut and re-opened"
    );
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholed_connection_is_detected_and_replaced() {
    let d = shared();
    let (user, pass) = d.new_user("bh");
    let proxy = Proxy::start(d.imap_port).await;
    let mut t = tuning();
    t.idle_renew = Duration::from_secs(2);
    t.command_timeout = Duration::from_secs(2);
    let p = Postern::start(vec![account("a", proxy.port, &user, &pass, &["INBOX"])], t, None).await;
    p.wait_watching("a").await;
    proxy.set_blackhole(true);
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "during blackhole", &id("bh"))).await;
    let m = p.manager.clone();
    eventually(T, "listener notices the dead connection", || {
        let st = m.status();
        async move {
            st.iter()
                .any(|s| s.mailbox == "INBOX" && s.last_error.as_deref().is_some_and(|e| e.contains("timed out")))
                .then_some(())
        }
    })
    .await;
    proxy.set_blackhole(false);
    p.wait_done("a", 1).await;
    eventually(T, "quarantined after recovery", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Quarantine").await == 1).then_some(())
    })
    .await;
    p.manager.shutdown().await;
}

/// Issue 18, item 9: a half-open IDLE is found by the liveness probe
/// (DONE after `probe_every` of silence, answered within `probe_timeout`),
/// not by the renewal or the command timeout, both set far beyond the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_half_open_idle_is_found_by_the_liveness_probe() {
    let d = shared();
    let (user, pass) = d.new_user("probe");
    let proxy = Proxy::start(d.imap_port).await;
    let mut t = tuning();
    t.idle_renew = Duration::from_secs(600);
    t.command_timeout = Duration::from_secs(600);
    t.probe_every = Duration::from_secs(1);
    t.probe_timeout = Duration::from_secs(2);
    let p = Postern::start(vec![account("a", proxy.port, &user, &pass, &["INBOX"])], t, None).await;
    p.wait_watching("a").await;
    // Let the first IDLE get its continuation, so the silence starts while
    // it waits; a blackhole before "+ idling" is caught by the same
    // probe_timeout, in the IDLE-begin stage (accepted below).
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set_blackhole(true);
    let m = p.manager.clone();
    let err = eventually(T, "the probe notices the dead connection", || {
        let st = m.status();
        async move {
            st.into_iter()
                .find(|s| s.mailbox == "INBOX")
                .and_then(|s| s.last_error)
                .filter(|e| e.contains("timed out"))
        }
    })
    .await;
    // Bounded by probe_timeout (2 s), not by the renewal or the command
    // timeout (600 s): the probe's DONE or, when the silence began between
    // two probes, the next IDLE's continuation.
    assert!(
        err.contains("after 2s") && (err.contains("IDLE liveness probe") || err.contains("IDLE continuation")),
        "found by the probe, not another timer: {err}"
    );
    proxy.set_blackhole(false);
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &mail("bad@evil.test", "after the probe", &id("pr"))).await;
    p.wait_done("a", 1).await;
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_restart_mid_stream_processes_each_message_once() {
    let d = Dovecot::private("restart", None);
    let (user, pass) = d.new_user("rs");
    let p = Postern::start(vec![account("a", d.imap_port, &user, &pass, &["INBOX"])], tuning(), None).await;
    p.wait_watching("a").await;
    let (mut evil, mut ham) = (BTreeSet::new(), BTreeSet::new());
    for round in 0..3 {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        for i in 0..4 {
            let mid = id("rs");
            let from = if i % 2 == 0 { "bad@evil.test" } else { "ok@good.test" };
            c.append("INBOX", None, &mail(from, &format!("r{round} m{i}"), &mid)).await;
            if i % 2 == 0 {
                evil.insert(format!("{mid}@test.postern"))
            } else {
                ham.insert(format!("{mid}@test.postern"))
            };
        }
        drop(c);
        d.stop();
        d.start();
    }
    assert_exactly_once(&p, d.imap_port, &user, &pass, &evil, &ham).await;
    let st = p.manager.status();
    assert!(
        st.iter().any(|s| s.mailbox == "INBOX" && s.connects >= 2),
        "listener reconnected: {st:?}"
    );
    p.manager.shutdown().await;
}

/// A fake server: connection n gets script n (then the last one forever).
async fn fake_server(scripts: Vec<&'static [u8]>) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n2 = n.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let i = n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let script = scripts[i.min(scripts.len() - 1)];
            tokio::spawn(async move {
                let _ = s.write_all(script).await;
                let mut buf = [0u8; 1024];
                // Answer every command line with the same script tail, then hang up.
                let _ = tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await;
                let _ = s.write_all(b"a1 NO [UNAVAILABLE] try later\r\n* BYE shutting down\r\n").await;
            });
        }
    });
    (port, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bye_no_and_garbage_are_logged_and_followed_by_reconnects() {
    let (port, conns) = fake_server(vec![
        b"* BYE too many connections\r\n",
        b"* OK ready\r\n",
        b"\x00\xff\xfegarbage that is not IMAP at all\r\n)))\r\n",
        b"* OK [CAPABILITY IMAP4rev1 IDLE] hi\r\n* 1 FETCH (BODY[] {99999}\r\nshort\r\n",
        b"+ unexpected continuation\r\n",
    ])
    .await;
    let mut t = tuning();
    t.command_timeout = Duration::from_secs(1);
    let p = Postern::start(vec![account("a", port, "u", "pw-irrelevant", &["INBOX"])], t, None).await;
    eventually(T, "several reconnect attempts", || async {
        (conns.load(std::sync::atomic::Ordering::SeqCst) >= 8).then_some(())
    })
    .await;
    let st = p.manager.status();
    let l = st.iter().find(|s| s.mailbox == "INBOX").unwrap();
    assert!(l.last_error.is_some(), "the failure is reported: {l:?}");
    assert_ne!(l.state, postern::manager::ListenerState::Stopped, "the listener keeps going");
    assert_eq!(p.store.message_rows("a").await.unwrap().len(), 0);
    p.manager.shutdown().await;
}
