//! Issue 17, item 2: the first-run bootstrap, with the real binary against
//! the real Dovecot and Rspamd controller. A seeded account of 500 messages
//! is learned (Junk as spam, old read inbox mail as ham) while nothing moves
//! and no flag changes; `kill -9` mid-way and a restart resume it, and each
//! message is learned once.

use crate::common::client::TestClient;
use crate::common::harness::{Child, query_i64};
use crate::common::stack::{free_port, shared};
use crate::common::{eventually, unique};
use std::path::Path;
use std::time::Duration;

// As long as the other real-peer tests wait: CI runs them all at once on two cores.
const WAIT: Duration = Duration::from_secs(120);
const JUNK: usize = 300;
const HAM: usize = 200;

/// A message with enough words of its own for Rspamd's classifier (it
/// declines fewer than 11 tokens): letters only, derived from `id`.
fn mail(id: &str) -> Vec<u8> {
    let own: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_digit(10).map_or(c, |d| (b'a' + d as u8) as char))
        .collect();
    let words: String = [
        "amber", "basalt", "cobalt", "dune", "ember", "fjord", "glacier", "heron", "indigo", "jasper", "kelp", "lichen", "mango", "nectar",
    ]
    .iter()
    .map(|w| format!("{w}{own} "))
    .collect();
    format!(
        "From: Sender <s@example.test>\r\nTo: user@example.test\r\nSubject: Bootstrap {id}\r\n\
         Date: Sun, 01 Jun 2025 10:00:00 +0000\r\nMessage-ID: <{id}@test.postern>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n"
    )
    .into_bytes()
}

fn write_config(dir: &Path, port: u16, user: &str, pass: &str) {
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "accounts:\n  - name: main\n    host: 127.0.0.1\n    port: {port}\n    tls: plain\n    user: {user}\n    pass: \"{pass}\"\n    \
             folders: [\"INBOX\"]\n    learn_bootstrap: true\n    bootstrap_ham_days: 30\n    bootstrap_per_minute: 3000\n"
        ),
    )
    .unwrap();
}

fn spawn(dir: &Path, listen: &str) -> Child {
    let (url, pass) = shared().rspamd_controller.clone().expect("rspamd controller in the stack");
    Child::spawn_with(
        dir,
        None,
        &[
            ("POSTERN_RSPAMD_CONTROLLER_URL", &url),
            ("POSTERN_RSPAMD_PASSWORD", &pass),
            ("POSTERN_LISTEN", listen),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_bootstrap_of_500_moves_nothing_shows_progress_and_resumes_after_sigkill() {
    let d = shared();
    let (user, pass) = d.new_user("boot");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let tag = unique("b");
    let old = "\"01-Jun-2025 10:00:00 +0000\"";
    for i in 0..JUNK {
        c.append_at("Junk", None, old, &mail(&format!("spam{i}-{tag}"))).await;
    }
    for i in 0..HAM {
        c.append_at("INBOX", Some("(\\Seen)"), old, &mail(&format!("ham{i}-{tag}"))).await;
    }
    // Not the user's verdict yet: unread, just arrived, or marked by Postern.
    c.append_at("INBOX", None, old, &mail(&format!("unread-{tag}"))).await;
    c.append("INBOX", Some("(\\Seen)"), &mail(&format!("fresh-{tag}"))).await;
    c.append_at("INBOX", Some("(\\Seen $Phishing)"), old, &mail(&format!("flagged-{tag}")))
        .await;
    let before = (c.list("Junk").await, c.list("INBOX").await);
    assert_eq!((before.0.len(), before.1.len()), (JUNK, HAM + 3));

    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), d.imap_port, &user, &pass);
    let db = dir.path().join("postern.db");
    let done = || query_i64(&db, "SELECT COALESCE((SELECT done FROM bootstrap WHERE account = 'main'), -1)");
    let listen = format!("127.0.0.1:{}", free_port());
    let child = spawn(dir.path(), &listen);

    // Progress while it runs, from the real binary's /metrics.
    let metrics = eventually(WAIT, "bootstrap progress on /metrics", || {
        let url = format!("http://{listen}/metrics");
        async move {
            let t = reqwest::get(url).await.ok()?.text().await.ok()?;
            let total = t.contains("postern_bootstrap_messages{account=\"main\",of=\"total\"} 500");
            (total && done() > 0 && done() < 500).then_some(t)
        }
    })
    .await;
    assert!(
        metrics.contains("postern_bootstrap_messages{account=\"main\",of=\"done\"}"),
        "{metrics}"
    );
    eventually(WAIT, "the bootstrap 100 messages in", || async { (done() >= 100).then_some(()) }).await;
    child.kill9();
    let at_kill = done();
    assert!(at_kill < 500, "killed mid-way, at {at_kill}");

    let child = spawn(dir.path(), &format!("127.0.0.1:{}", free_port()));
    eventually(WAIT, "the bootstrap finished", || async {
        (query_i64(&db, "SELECT COUNT(*) FROM bootstrap WHERE state = 'done'") == 1).then_some(())
    })
    .await;
    eventually(WAIT, "every lesson sent to Rspamd", || async {
        (query_i64(&db, "SELECT COUNT(*) FROM learned WHERE state = 'pending'") == 0).then_some(())
    })
    .await;
    drop(child);

    let q = |sql: &str| query_i64(&db, sql);
    assert_eq!(q("SELECT total FROM bootstrap"), 500, "listed once, not again after the restart");
    assert_eq!(q("SELECT done FROM bootstrap"), 500);
    assert_eq!(q("SELECT COUNT(*) FROM bootstrap_items WHERE state = 'queued'"), 500);
    assert_eq!(q("SELECT COUNT(*) FROM learned WHERE class = 'spam'"), JUNK as i64);
    assert_eq!(q("SELECT COUNT(*) FROM learned WHERE class = 'ham'"), HAM as i64);
    assert_eq!(
        q("SELECT COUNT(*) FROM learned WHERE state IN ('learned', 'skipped')"),
        500,
        "every lesson answered by Rspamd"
    );
    sent_once_unless_refused(&d.base.join("rspamd/log/rspamd.log"), &tag);
    assert_eq!(q("SELECT COUNT(*) FROM feedback WHERE source LIKE 'bootstrap:%'"), 500);
    assert_eq!(q("SELECT COUNT(*) FROM audit WHERE event = 'bootstrap_started'"), 1);
    assert_eq!(q("SELECT COUNT(*) FROM audit WHERE event = 'bootstrap_done'"), 1);
    assert_eq!(q("SELECT COUNT(*) FROM intents"), 0, "no action planned");
    let after = (c.list("Junk").await, c.list("INBOX").await);
    assert_eq!(after, before, "same UIDs and flags in Junk and INBOX");
}

/// What the real Rspamd's controller log says it was sent for this run's
/// messages: each one once, or at most once more for every time Rspamd
/// refused it (its sqlite Bayes answers "database is locked" now and then
/// while the scanner reads it, and Postern retries; a send cut by `kill -9`
/// comes back as "already learned"), and none learned twice. So the
/// restart sent nothing it had finished.
fn sent_once_unless_refused(log: &Path, tag: &str) {
    use std::collections::BTreeMap;
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("Rspamd's log {}: {e}", log.display()));
    let id = |s: &str, start: &str, end: char| -> Option<String> {
        let rest = &s[s.find(start)? + start.len()..];
        Some(rest[..rest.find(end).unwrap_or(rest.len())].trim().to_string())
    };
    let (mut sent, mut refused, mut learned) = (
        BTreeMap::<String, u32>::new(),
        BTreeMap::<String, u32>::new(),
        BTreeMap::<String, u32>::new(),
    );
    for l in text.lines().filter(|l| l.contains("(controller)") && l.contains(tag)) {
        if let Some(m) = id(l, "loaded message; id: <", '>') {
            *sent.entry(m).or_default() += 1;
        } else if let Some(m) = id(l, "cannot learn <", '>') {
            // A learn condition's "no" is an answer (204), not a refusal.
            if !l.contains("learn conditions denied") {
                *refused.entry(m).or_default() += 1;
            }
        } else if let Some(m) = id(l, " learned message as ", '\n') {
            let m = m.split_once(": ").map_or(m.clone(), |(_, m)| m.to_string());
            *learned.entry(m).or_default() += 1;
        }
    }
    assert_eq!(sent.len(), JUNK + HAM, "Rspamd saw each message: {} of {}", sent.len(), JUNK + HAM);
    let resent: Vec<_> = sent
        .iter()
        .filter(|(m, n)| **n > 1 + refused.get(*m).copied().unwrap_or(0))
        .collect();
    assert!(resent.is_empty(), "sent again without a refusal: {resent:?}");
    let twice: Vec<_> = learned.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "learned twice: {twice:?}");
}
