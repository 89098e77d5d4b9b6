//! The fault soak: deliver many messages while a proxy cuts Postern's IMAP
//! connections at random, Dovecot restarts and the real binary is
//! SIGKILLed and restarted. At the end every message must have been
//! processed exactly once, acted on at most once, and be somewhere.
//!
//! CI runs the short version below; `make soak` runs the full one
//! (SOAK_MESSAGES=1000 SOAK_CUTS=50 SOAK_DOVECOT_RESTARTS=3 SOAK_KILLS=5).

use crate::common::client::TestClient;
use crate::common::harness::{Child, query_i64, write_config};
use crate::common::mail;
use crate::common::proxy::Proxy;
use crate::common::stack::Dovecot;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Cut,
    RestartDovecot,
    KillPostern,
}

/// Message-ID lines in a folder ("" when it does not exist).
async fn ids(port: u16, folder: &str) -> Vec<String> {
    let mut c = TestClient::connect(port, "alice", "alicepass-1").await;
    if !c.exists(folder).await {
        return Vec::new();
    }
    c.ids(folder).await
}

fn extract(line: &str) -> String {
    line.split('<').nth(1).and_then(|s| s.split('>').next()).unwrap_or(line).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_nothing_and_act_once() {
    let n = knob("SOAK_MESSAGES", 200);
    let (cuts, restarts, kills) = (knob("SOAK_CUTS", 10), knob("SOAK_DOVECOT_RESTARTS", 1), knob("SOAK_KILLS", 1));
    let seed = knob("SOAK_SEED", 7) as u64;
    let mut rng = StdRng::seed_from_u64(seed);
    let d = Dovecot::private("soak", None);
    let proxy = Proxy::start(d.imap_port).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("postern.db");
    write_config(dir.path(), proxy.port, "alice", "alicepass-1", &["INBOX"]);
    let mut child = Some(Child::spawn(dir.path(), None));
    let started = Instant::now();
    wait(&db, "SELECT count(*) FROM mailbox_state", 1, Duration::from_secs(60)).await;

    // Faults at random message positions, reproducible from the seed.
    let mut schedule: Vec<(usize, Fault)> = Vec::new();
    for (count, f) in [(cuts, Fault::Cut), (restarts, Fault::RestartDovecot), (kills, Fault::KillPostern)] {
        for _ in 0..count {
            schedule.push((rng.random_range(1..n.max(2)), f));
        }
    }
    schedule.sort_by_key(|(i, _)| *i);

    let mut delivered = BTreeSet::new();
    let mut evil = BTreeSet::new();
    let mut done = (0, 0, 0);
    let mut c = TestClient::connect(d.imap_port, "alice", "alicepass-1").await;
    let mut next = schedule.iter().peekable();
    for i in 0..n {
        while let Some((_, f)) = next.next_if(|(at, _)| *at == i) {
            match f {
                Fault::Cut => {
                    proxy.cut_all();
                    done.0 += 1;
                }
                Fault::RestartDovecot => {
                    drop(c);
                    d.stop();
                    tokio::time::sleep(Duration::from_millis(rng.random_range(100..1500))).await;
                    d.start();
                    c = TestClient::connect(d.imap_port, "alice", "alicepass-1").await;
                    done.1 += 1;
                }
                Fault::KillPostern => {
                    if let Some(ch) = child.take() {
                        ch.kill9();
                    }
                    tokio::time::sleep(Duration::from_millis(rng.random_range(50..800))).await;
                    child = Some(Child::spawn(dir.path(), None));
                    done.2 += 1;
                }
            }
        }
        let id = format!("soak-{seed}-{i}");
        let bad = rng.random_bool(0.3);
        let from = if bad { "spam@evil.test" } else { "friend@good.test" };
        c.append("INBOX", None, &mail(from, &format!("soak {i}"), &id)).await;
        let mid = format!("{id}@test.postern");
        if bad {
            evil.insert(mid.clone());
        }
        delivered.insert(mid);
        if i % 25 == 0 {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..200))).await;
        }
    }
    drop(c);

    // Liveness bound for the catch-up, not a speed goal.
    let limit = Duration::from_secs(120 + n as u64 / 2);
    wait(&db, "SELECT count(*) FROM messages WHERE mailbox = 'INBOX'", n as i64, limit).await;
    wait(
        &db,
        "SELECT count(*) FROM intents WHERE state <> 'pending'",
        evil.len() as i64,
        limit,
    )
    .await;

    let q = |sql: &str| query_i64(&db, sql);
    let inbox: Vec<String> = ids(d.imap_port, "INBOX").await.iter().map(|l| extract(l)).collect();
    let quarantine: Vec<String> = ids(d.imap_port, "Quarantine").await.iter().map(|l| extract(l)).collect();
    let held: Vec<String> = ids(d.imap_port, "Postern-Held").await.iter().map(|l| extract(l)).collect();
    let everywhere: Vec<&String> = inbox.iter().chain(&quarantine).chain(&held).collect();
    let unique_found: BTreeSet<String> = everywhere.iter().map(|s| s.to_string()).collect();

    let processed = q("SELECT count(DISTINCT message_id) FROM messages WHERE mailbox = 'INBOX'");
    let rows = q("SELECT count(*) FROM messages WHERE mailbox = 'INBOX'");
    let intents = q("SELECT count(*) FROM intents");
    let acted = q("SELECT count(*) FROM audit WHERE event = 'action_done'");
    let acted_twice =
        q("SELECT count(*) FROM (SELECT message FROM audit WHERE event = 'action_done' GROUP BY message HAVING count(*) > 1)");
    println!("soak summary (seed {seed}, {:.0} s)", started.elapsed().as_secs_f64());
    println!("  delivered            {n} ({} to be quarantined)", evil.len());
    println!(
        "  faults               {} connection cuts, {} Dovecot restarts, {} SIGKILLs of Postern",
        done.0, done.1, done.2
    );
    println!(
        "  proxy connections    {}",
        proxy.accepted.load(std::sync::atomic::Ordering::SeqCst)
    );
    println!("  processed            {processed} distinct of {rows} rows (want {n} and {n})");
    println!(
        "  actions              {intents} intents, {acted} moves, {acted_twice} messages moved twice (want {}, {}, 0)",
        evil.len(),
        evil.len()
    );
    println!(
        "  folders              INBOX {}, Quarantine {}, hold {}; total {} (want {n}), distinct {}",
        inbox.len(),
        quarantine.len(),
        held.len(),
        everywhere.len(),
        unique_found.len()
    );

    let mut violations = Vec::new();
    if processed != n as i64 || rows != n as i64 {
        violations.push(format!("processed {processed} distinct in {rows} rows, delivered {n}"));
    }
    if intents != evil.len() as i64 || acted != evil.len() as i64 || acted_twice != 0 {
        violations.push(format!(
            "{intents} intents and {acted} moves for {} bad messages; {acted_twice} twice",
            evil.len()
        ));
    }
    if everywhere.len() != n || unique_found != delivered {
        let missing: Vec<_> = delivered.difference(&unique_found).take(5).collect();
        violations.push(format!(
            "{} copies on the server for {n} delivered; missing e.g. {missing:?}",
            everywhere.len()
        ));
    }
    let q_set: BTreeSet<String> = quarantine.iter().cloned().collect();
    if q_set != evil {
        violations.push(format!("quarantine holds {} messages, {} were bad", q_set.len(), evil.len()));
    }
    drop(child);
    if !violations.is_empty() {
        let log = std::fs::read_to_string(dir.path().join("postern.log")).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!("soak violations:\n  {}\nlast log lines:\n{tail}", violations.join("\n  "));
    }
    println!("  result               OK: nothing missed, nothing acted on twice, nothing vanished");
}

async fn wait(db: &Path, sql: &str, want: i64, limit: Duration) {
    let start = Instant::now();
    loop {
        let got = query_i64(db, sql);
        if got == want {
            return;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {sql} = {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
