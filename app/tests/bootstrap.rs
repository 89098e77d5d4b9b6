//! Issue 17, item 2: the first-run bootstrap, with the real binary against
//! the real Dovecot and Rspamd controller. A seeded account of 500 messages
//! is learned (Junk as spam, old read inbox mail as ham) while nothing moves
//! and no flag changes; `kill -9` mid-way and a restart resume it, and each
//! message is learned once.

use crate::common::client::TestClient;
use crate::common::harness::{Child, query_i64};
use crate::common::stack::{free_port, shared};
use crate::common::{eventually, unique};
use std::collections::{BTreeMap, BTreeSet};
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
    let finished_at_kill: BTreeSet<String> = lessons(&db, "state IN ('learned', 'skipped')")
        .into_iter()
        .map(|(id, _)| id)
        .collect();

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
    sent_as_recorded(&d.base.join("rspamd/log/rspamd.log"), &lessons(&db, "1"), &finished_at_kill, &tag);
    assert_eq!(q("SELECT COUNT(*) FROM feedback WHERE source LIKE 'bootstrap:%'"), 500);
    assert_eq!(q("SELECT COUNT(*) FROM audit WHERE event = 'bootstrap_started'"), 1);
    assert_eq!(q("SELECT COUNT(*) FROM audit WHERE event = 'bootstrap_done'"), 1);
    assert_eq!(q("SELECT COUNT(*) FROM intents"), 0, "no action planned");
    let after = (c.list("Junk").await, c.list("INBOX").await);
    assert_eq!(after, before, "same UIDs and flags in Junk and INBOX");
}

/// Each lesson's Message-ID and the attempts Postern recorded for it, from
/// its store and the copies it sent.
fn lessons(db: &Path, filter: &str) -> Vec<(String, u32)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut st = c
        .prepare(&format!("SELECT eml_path, attempts FROM learned WHERE {filter}"))
        .unwrap();
    let rows: Vec<(String, u32)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.into_iter()
        .map(|(path, attempts)| {
            let full = db.parent().unwrap().join(&path);
            let raw = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("stored copy {}: {e}", full.display()));
            let id = raw
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: <"))
                .and_then(|l| l.split('>').next())
                .unwrap_or_else(|| panic!("no Message-ID in {}", full.display()));
            (id.to_string(), attempts)
        })
        .collect()
}

/// What the real Rspamd's controller log says it was sent for this run's
/// messages, against what Postern recorded: every message sent, each send
/// one of Postern's recorded attempts (a refusal such as "database is
/// locked" from its sqlite Bayes, or a timeout, is an attempt and is
/// retried) except for the single send `kill -9` cut before its outcome was
/// stored (lessons go one at a time), which cannot be one Postern had
/// finished, and nothing learned twice. The restart re-sending a finished
/// lesson would be an unrecorded send: its outcome updates pending rows only.
fn sent_as_recorded(log: &Path, recorded: &[(String, u32)], finished_at_kill: &BTreeSet<String>, tag: &str) {
    // Lossy: other mail through the same Rspamd (a corpus run) logs
    // subjects in whatever bytes they came in.
    let bytes = std::fs::read(log).unwrap_or_else(|e| panic!("Rspamd's log {}: {e}", log.display()));
    let text = String::from_utf8_lossy(&bytes);
    let id = |s: &str, start: &str, end: char| -> Option<String> {
        let rest = &s[s.find(start)? + start.len()..];
        Some(rest[..rest.find(end).unwrap_or(rest.len())].trim().to_string())
    };
    let (mut sent, mut learned) = (BTreeMap::<String, u32>::new(), BTreeMap::<String, u32>::new());
    for l in text.lines().filter(|l| l.contains("(controller)") && l.contains(tag)) {
        if let Some(m) = id(l, "loaded message; id: <", '>') {
            *sent.entry(m).or_default() += 1;
        } else if let Some(m) = id(l, " learned message as ", '\n') {
            let m = m.split_once(": ").map_or(m.clone(), |(_, m)| m.to_string());
            *learned.entry(m).or_default() += 1;
        }
    }
    assert_eq!(sent.len(), JUNK + HAM, "Rspamd saw each message: {} of {}", sent.len(), JUNK + HAM);
    assert_eq!(recorded.len(), JUNK + HAM, "a lesson for each message");
    let recorded: BTreeMap<_, _> = recorded.iter().cloned().collect();
    let unrecorded: Vec<_> = sent
        .iter()
        .filter(|(m, n)| **n > recorded.get(*m).copied().unwrap_or(0))
        .map(|(m, n)| (m, n - recorded.get(m).copied().unwrap_or(0)))
        .collect();
    let cut: u32 = unrecorded.iter().map(|(_, n)| n).sum();
    assert!(
        cut <= 1,
        "sends Postern did not record, beyond the one a kill can cut: {unrecorded:?}"
    );
    let again: Vec<_> = unrecorded.iter().filter(|(m, _)| finished_at_kill.contains(*m)).collect();
    assert!(again.is_empty(), "finished before the kill, sent again after it: {again:?}");
    let twice: Vec<_> = learned.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "learned twice: {twice:?}");
}
