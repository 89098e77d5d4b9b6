//! In-line mode (issue 19) against the real thing: the test stack's
//! Postfix (scripts/peers-postfix.sh) hands every SMTP transaction to
//! Postern's milter and delivers to the test Dovecot over LMTP. Mail is
//! sent through Postfix's SMTP port with lettre; what Postfix answers, what
//! lands in the mailbox or the hold queue, and what the store recorded are
//! checked.

use crate::common::harness::{Postern, account, policy, tuning};
use crate::common::stack::{Dovecot, parse_env, repo_root, shared};
use crate::common::unique;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};
use postern::config::{MilterListen, MilterSettings};
use postern::domain::Decision;
use postern::milter::Milter;
use postern::scan::scanners::{attachments, clamav, lists, rspamd};
use postern::scan::{Decider, FailureMode, InputOptions, LiveDecider, Pipeline, Policy, ScanError, ScanRequest, Scanner};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// The stack with Postfix (started once; idempotent), as peers.env says.
fn postfix() -> &'static BTreeMap<String, String> {
    static P: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    P.get_or_init(|| {
        let d = shared();
        let out = std::process::Command::new("bash")
            .arg(repo_root().join("scripts/test-stack.sh"))
            .args(["up", d.base.to_str().unwrap(), "dovecot", "postfix"])
            .output()
            .expect("running scripts/test-stack.sh");
        assert!(
            out.status.success(),
            "postfix peer failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_env(&d.base.join("peers.env"))
    })
}

/// Postfix talks to one milter address: one test at a time owns it.
static MILTER_PORT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn pipeline(rspamd_url: &str, clamd: &str) -> Pipeline {
    let scanners: Vec<Arc<dyn Scanner>> = vec![
        Arc::new(lists::ListScanner::new(policy())),
        Arc::new(attachments::AttachmentScanner),
        Arc::new(rspamd::RspamdScanner::new(rspamd_url, Duration::from_secs(10), FailureMode::Closed).unwrap()),
        Arc::new(clamav::ClamavScanner::new(
            clamd,
            Duration::from_secs(10),
            FailureMode::Closed,
            25 * 1024 * 1024,
        )),
    ];
    Pipeline::new(scanners, Policy::default_policy().unwrap(), InputOptions::default())
}

fn stack_pipeline() -> Pipeline {
    let d = shared();
    pipeline(d.rspamd_url.as_deref().unwrap(), d.clamd_addr.as_deref().unwrap())
}

/// Counts the IMAP side's scans (the milter scans through the LiveDecider).
struct Counting(Arc<LiveDecider>, AtomicUsize);

impl Decider for Counting {
    fn id(&self) -> &'static str {
        "counting"
    }
    fn decide<'a>(&'a self, req: ScanRequest<'a>) -> BoxFuture<'a, Result<Decision, ScanError>> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.decide(req)
    }
}

/// Starts the milter on Postfix's milter address; stops when dropped.
async fn start_milter(store: postern::store::Store, live: Arc<LiveDecider>) -> tokio_util::sync::CancellationToken {
    start_milter_with(store, live, MilterSettings::default(), 10 * 1024 * 1024, None).await
}

/// [`start_milter`] with these settings and size limit.
async fn start_milter_with(
    store: postern::store::Store,
    live: Arc<LiveDecider>,
    settings: MilterSettings,
    max_message_bytes: u32,
    eml_dir: Option<std::path::PathBuf>,
) -> tokio_util::sync::CancellationToken {
    let listen: MilterListen = postfix()["POSTFIX_MILTER"].parse().unwrap();
    // A milter stopped a moment ago may still hold the port.
    let mut tries = 0;
    let bound = loop {
        match postern::milter::bind(&listen).await {
            Ok(b) => break b,
            Err(e) if tries < 50 => {
                tries += 1;
                eprintln!("milter port busy ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("binding the milter: {e}"),
        }
    };
    let m = Arc::new(Milter {
        live,
        store,
        events: tokio::sync::broadcast::channel(64).0,
        settings,
        max_message_bytes,
        eml_dir,
    });
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(postern::milter::serve(bound, m, stop.clone()));
    stop
}

/// Sends through Postfix: Ok(queue id) or Err(SMTP code and text).
async fn send(from: &str, to: &str, raw: &[u8]) -> Result<String, String> {
    let port: u16 = postfix()["POSTFIX_SMTP_PORT"].parse().unwrap();
    let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_secs(60)))
        .build();
    let env = Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
    match t.send_raw(&env, raw).await {
        Ok(r) => {
            let text = r.message().collect::<Vec<_>>().join(" ");
            Ok(text.rsplit(' ').next().unwrap_or_default().to_string())
        }
        Err(e) => Err(format!("{} {e}", e.status().map(|c| c.to_string()).unwrap_or_default())),
    }
}

fn message(from: &str, subject: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <user@example.test>\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn eicar_message(id: &str) -> Vec<u8> {
    use base64::Engine;
    // Assembled from two halves so this source file is not itself a test virus.
    let eicar = [&b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-"[..], b"TEST-FILE!$H+H*"].concat();
    let b64 = base64::engine::general_purpose::STANDARD.encode(eicar);
    format!(
        "From: <sender@example.net>\r\nTo: <user@example.test>\r\nSubject: invoice\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\n\
         Content-Type: application/octet-stream; name=\"eicar.com\"\r\nContent-Disposition: attachment; filename=\"eicar.com\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b1--\r\n"
    )
    .into_bytes()
}

/// The header block of every message in the user's folder.
async fn headers_in(d: &Dovecot, user: &str, pass: &str, mailbox: &str) -> Vec<String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", d.imap_port)).await.unwrap();
    let mut c = async_imap::Client::new(tcp);
    c.read_response().await.unwrap();
    let mut s = c.login(user, pass).await.map_err(|(e, _)| e).unwrap();
    let mb = s.examine(mailbox).await.unwrap();
    if mb.exists == 0 {
        return Vec::new();
    }
    let fetched: Vec<_> = s.fetch("1:*", "BODY.PEEK[HEADER]").await.unwrap().try_collect().await.unwrap();
    fetched
        .iter()
        .map(|f| String::from_utf8_lossy(f.header().unwrap_or_default()).into_owned())
        .collect()
}

fn held_queue_ids() -> Vec<String> {
    let out = std::process::Command::new(&postfix()["POSTFIX_POSTQUEUE"])
        .arg("-j")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["queue_name"] == "hold")
        .filter_map(|v| v["queue_id"].as_str().map(str::to_string))
        .collect()
}

// EICAR is refused with 550, a block-listed sender's mail is held in
// Postfix's hold queue, GTUBE and ham are delivered with the verdict
// headers, and the IMAP listener watching the same mailbox takes the
// milter's decisions without scanning again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_19_postfix_with_the_milter_rejects_holds_and_tags() {
    let _port = MILTER_PORT.lock().await;
    let d = shared();
    let live = Arc::new(LiveDecider::new(stack_pipeline()));
    let counting = Arc::new(Counting(live.clone(), AtomicUsize::new(0)));
    let (user, pass) = d.new_user("mf");
    let p = Postern::start_with(
        vec![account("mf", d.imap_port, &user, &pass, &["INBOX"])],
        tuning(),
        None,
        counting.clone(),
    )
    .await;
    p.wait_watching("mf").await;
    let _stop = start_milter(p.store.clone(), live).await.drop_guard();
    let to = format!("{user}@example.test");

    let eicar = send("sender@example.net", &to, &eicar_message(&format!("{}@t", unique("eicar")))).await;
    let err = eicar.expect_err("EICAR must be refused");
    assert!(err.starts_with("550"), "{err}");
    assert!(
        err.contains("Message refused by content policy") && !err.contains("AV_VIRUS"),
        "no internal detail: {err}"
    );

    let held = send(
        "boss@evil.test",
        &to,
        &message("boss@evil.test", "wire", &format!("{}@t", unique("held")), "pay now"),
    )
    .await
    .expect("quarantine is accepted into the hold queue");
    assert!(
        held_queue_ids().contains(&held),
        "{held} is not in the hold queue: {:?}",
        held_queue_ids()
    );
    let deleted = std::process::Command::new("postsuper")
        .args(["-c", &postfix()["POSTFIX_CONF_DIR"], "-d", &held, "hold"])
        .output()
        .unwrap();
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));

    let gtube_id = format!("{}@t", unique("gtube"));
    // The spammer forges the headers Sieve reads; the milter removes them.
    let forged = [
        b"X-Postern-Verdict: pass\r\nX-Spam: No\r\n".as_slice(),
        &message("spam@example.net", "offer", &gtube_id, GTUBE),
    ]
    .concat();
    send("spam@example.net", &to, &forged).await.expect("junk is accepted with headers");
    let ham_id = format!("{}@t", unique("ham"));
    let ham_q = send(
        "friend@example.net",
        &to,
        &message("friend@example.net", "lunch", &ham_id, "Lunch at noon?"),
    )
    .await
    .expect("ham is accepted");

    // Both reach the mailbox with the verdict headers; the IMAP side takes
    // the milter's decisions (GTUBE: junk, moved to Junk) without scanning.
    let rows = p.wait_done("mf", 2).await;
    assert_eq!(counting.1.load(Ordering::SeqCst), 0, "the IMAP side scanned again: {rows:?}");
    let all: Vec<String> = [
        headers_in(d, &user, &pass, "INBOX").await,
        headers_in(d, &user, &pass, "Junk").await,
    ]
    .concat();
    let ham = all.iter().find(|h| h.contains(&ham_id)).expect("ham delivered");
    assert!(ham.contains("X-Postern-Verdict: pass") && !ham.contains("X-Spam:"), "{ham}");
    let gtube = all.iter().find(|h| h.contains(&gtube_id)).expect("GTUBE delivered");
    assert!(
        gtube.contains("X-Postern-Verdict: junk") && gtube.contains("X-Spam: Yes"),
        "{gtube}"
    );
    assert_eq!(gtube.matches("X-Postern-Verdict:").count(), 1, "{gtube}");
    assert!(!gtube.contains("X-Spam: No"), "{gtube}");

    // Every decision is in the store with its envelope.
    let db = p.dir.path().join("postern.db");
    let q = |sql: &str| crate::common::harness::query_i64(&db, sql);
    assert_eq!(q("SELECT COUNT(*) FROM milter_decisions"), 4);
    assert_eq!(
        q("SELECT COUNT(*) FROM milter_decisions WHERE reply='reject' AND queue_id IS NOT NULL"),
        1
    );
    assert_eq!(
        q(&format!(
            "SELECT COUNT(*) FROM milter_decisions WHERE queue_id='{ham_q}' AND client_ip='127.0.0.1' AND rcpt_json='[\"{to}\"]' AND mail_from='friend@example.net' AND reply='accept'"
        )),
        1
    );
    assert_eq!(q("SELECT COUNT(*) FROM messages WHERE account='milter'"), 4);
    assert_eq!(q("SELECT COUNT(*) FROM audit WHERE event='milter'"), 4);
    assert_eq!(
        q("SELECT COUNT(*) FROM messages WHERE account='mf' AND reason LIKE 'decided in-line by the milter%'"),
        2,
        "{rows:?}"
    );
}

/// A private Rspamd (scripts/peers-setup.sh on free ports), so stopping it
/// leaves the shared stack's Rspamd to the other tests.
struct PrivateRspamd {
    base: std::path::PathBuf,
    url: String,
}

impl PrivateRspamd {
    fn start() -> PrivateRspamd {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
                .to_string()
        };
        let base = std::path::PathBuf::from(format!("/tmp/pt-{}", unique("rspamd")));
        let out = std::process::Command::new("bash")
            .arg(repo_root().join("scripts/peers-setup.sh"))
            .args([base.to_str().unwrap(), "rspamd"])
            .env("RSPAMD_NORMAL_PORT", free())
            .env("RSPAMD_CONTROLLER_PORT", free())
            .env("PEERS_SKIP_INSTALL", "1")
            .output()
            .expect("peers-setup.sh");
        assert!(
            out.status.success(),
            "private rspamd failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = parse_env(&base.join("peers.env"))["RSPAMD_URL"].clone();
        PrivateRspamd { base, url }
    }

    /// Stops it the hard way, as a crash would: SIGKILL to its workers and
    /// its main process, by the pids it runs under (not by name).
    fn kill(&self) {
        let main: u32 = std::fs::read_to_string(self.base.join("rspamd/run/rspamd.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces.
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|st| {
                    st.rsplit_once(") ")
                        .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok())
                }) == Some(main)
            })
            .collect();
        pids.push(main);
        for pid in pids {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

impl Drop for PrivateRspamd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

// Rspamd (a critical scanner) stopped for real: a private Rspamd answers
// the first message, then is killed; the next message gets 4xx from
// Postfix, the sender retries, nothing is delivered or lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_a_critical_scanner_down_tempfails() {
    let rspamd = tokio::task::spawn_blocking(PrivateRspamd::start).await.unwrap();
    let _port = MILTER_PORT.lock().await;
    let d = shared();
    let live = Arc::new(LiveDecider::new(pipeline(&rspamd.url, d.clamd_addr.as_deref().unwrap())));
    let dir = tempfile::tempdir().unwrap();
    let store = crate::common::harness::store_at(&dir.path().join("db"));
    let _stop = start_milter(store, live).await.drop_guard();
    let (user, _) = d.new_user("mt");
    let to = format!("{user}@example.test");
    send(
        "friend@example.net",
        &to,
        &message("friend@example.net", "hi", &format!("{}@t", unique("up")), "hello"),
    )
    .await
    .expect("accepted while Rspamd answers");
    rspamd.kill();
    let r = send(
        "friend@example.net",
        &to,
        &message("friend@example.net", "hi", &format!("{}@t", unique("down")), "hello"),
    )
    .await;
    let err = r.expect_err("must be tempfailed");
    assert!(err.starts_with("451"), "{err}");
    let q = |sql: &str| crate::common::harness::query_i64(&dir.path().join("db"), sql);
    assert_eq!(q("SELECT COUNT(*) FROM milter_decisions WHERE reply='tempfail'"), 1);
    assert_eq!(q("SELECT COUNT(*) FROM milter_decisions WHERE reply='accept'"), 1);
}

// Concurrent SMTP sessions: every message is decided once and delivered,
// none lost: the issue's 200 messages over 10 sessions (local scanners
// only, so the peers' speed does not matter; about 10 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_19_concurrent_sessions_each_message_decided_once() {
    const SESSIONS: usize = 10;
    const EACH: usize = 20;
    let _port = MILTER_PORT.lock().await;
    let d = shared();
    let live = Arc::new(LiveDecider::new(crate::common::local_pipeline(InputOptions::default())));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let store = crate::common::harness::store_at(&db);
    let _stop = start_milter(store, live).await.drop_guard();
    let (user, pass) = d.new_user("mc");
    let to = format!("{user}@example.test");
    let sessions = (0..SESSIONS).map(|s| {
        let to = to.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let raw = message("friend@example.net", &format!("s{s} m{i}"), &format!("{}@t", unique("cc")), "hello");
                ids.push(send("friend@example.net", &to, &raw).await.expect("accepted"));
            }
            ids
        })
    });
    let mut queue_ids: Vec<String> = futures::future::join_all(sessions)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    queue_ids.sort();
    queue_ids.dedup();
    assert_eq!(queue_ids.len(), SESSIONS * EACH);
    let q = |sql: &str| crate::common::harness::query_i64(&db, sql);
    assert_eq!(q("SELECT COUNT(*) FROM milter_decisions"), (SESSIONS * EACH) as i64);
    assert_eq!(q("SELECT COUNT(DISTINCT queue_id) FROM milter_decisions"), (SESSIONS * EACH) as i64);
    // Generous: 200 deliveries through Postfix and LMTP while CI runs every
    // other real-peer test beside this one.
    crate::common::eventually(Duration::from_secs(120), "every message in INBOX", || {
        let (user, pass) = (user.clone(), pass.clone());
        async move { (headers_in(d, &user, &pass, "INBOX").await.len() == SESSIONS * EACH).then_some(()) }
    })
    .await;
}

/// A scanner that never answers in time: whatever it is asked to scan
/// runs into the milter's scan deadline.
struct Stuck;

impl Scanner for Stuck {
    fn id(&self) -> &'static str {
        "stuck"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn failure_mode(&self) -> FailureMode {
        FailureMode::Closed
    }
    fn tags(&self) -> &'static [&'static str] {
        &[]
    }
    fn scan<'a>(&'a self, _: &'a postern::scan::ScanInput) -> BoxFuture<'a, Result<Vec<postern::domain::Finding>, ScanError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Vec::new())
        })
    }
}

// Through the real Postfix: a message over the size limit is accepted
// unscanned with `X-Postern-Scan: not scanned` (the default) or refused
// with 451 (POSTERN_MILTER_ON_OVERSIZE=tempfail), and a scan that runs past
// POSTERN_MILTER_TIMEOUT_SECS is 451. The only scanner never answers, so
// an accepted oversize message proves it was not scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_oversize_and_scan_timeout_through_postfix() {
    let _port = MILTER_PORT.lock().await;
    let d = shared();
    let stuck: Vec<Arc<dyn Scanner>> = vec![Arc::new(Stuck)];
    let live = Arc::new(LiveDecider::new(Pipeline::new(
        stuck,
        Policy::default_policy().unwrap(),
        InputOptions::default(),
    )));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let store = crate::common::harness::store_at(&db);
    let (user, pass) = d.new_user("mo");
    let to = format!("{user}@example.test");
    let big_body = "0123456789abcdef ".repeat(1024);
    let settings = MilterSettings {
        scan_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    const LIMIT: u32 = 4096;

    let stop = start_milter_with(store.clone(), live.clone(), settings.clone(), LIMIT, None).await;
    let big_id = format!("{}@t", unique("big"));
    send("friend@example.net", &to, &message("friend@example.net", "big", &big_id, &big_body))
        .await
        .expect("oversize mail is accepted unscanned by default");
    let err = send(
        "friend@example.net",
        &to,
        &message("friend@example.net", "small", &format!("{}@t", unique("slow")), "hello"),
    )
    .await
    .expect_err("a scan past its deadline is tempfailed");
    assert!(err.starts_with("451") && err.contains("Content scan unavailable"), "{err}");
    stop.cancel();

    let tempfail = MilterSettings {
        on_oversize: postern::config::MilterReply::Tempfail,
        ..settings
    };
    let _stop = start_milter_with(store, live, tempfail, LIMIT, None).await.drop_guard();
    let err = send(
        "friend@example.net",
        &to,
        &message("friend@example.net", "big", &format!("{}@t", unique("big2")), &big_body),
    )
    .await
    .expect_err("oversize mail is tempfailed when so configured");
    assert!(err.starts_with("451") && err.contains("Message too large to scan"), "{err}");

    crate::common::eventually(Duration::from_secs(30), "the oversize mail in INBOX", || {
        let (user, pass) = (user.clone(), pass.clone());
        async move { (headers_in(d, &user, &pass, "INBOX").await.len() == 1).then_some(()) }
    })
    .await;
    let inbox = headers_in(d, &user, &pass, "INBOX").await;
    assert!(inbox[0].contains(&big_id), "{inbox:?}");
    assert!(
        inbox[0].contains("X-Postern-Scan: not scanned: ") && inbox[0].contains(&format!("over the {LIMIT}-byte limit")),
        "{}",
        inbox[0]
    );
    let q = |sql: &str| crate::common::harness::query_i64(&db, sql);
    assert_eq!(q("SELECT COUNT(*) FROM milter_decisions WHERE reply='accept'"), 1);
    assert_eq!(q("SELECT COUNT(*) FROM milter_decisions WHERE reply='tempfail'"), 2);
}

// Held in-line mail on the dashboard (account `milter`): release is
// `postsuper -H` (Postfix then delivers it), delete is `postsuper -d … hold`,
// each audited with the operator; a copy is kept for the drawer, and a
// second click on a handled row is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn issue_19_held_mail_is_released_or_deleted_through_postsuper() {
    use postern::runtime::OpError;
    use postern::store::OpKind;
    let _port = MILTER_PORT.lock().await;
    let d = shared();
    let conf = postfix()["POSTFIX_CONF_DIR"].clone();
    let web = crate::common::web::WebPostern::start_with(vec![], crate::common::web::Scanners::Local, |s| {
        s.milter.postsuper = vec!["postsuper".into(), "-c".into(), conf.clone()];
        s.milter.postqueue = vec!["postqueue".into(), "-c".into(), conf.clone()];
    })
    .await;
    let eml = web.rt.settings().eml_dir.clone();
    let _stop = start_milter_with(
        web.rt.store().clone(),
        web.rt.live().clone(),
        MilterSettings::default(),
        1 << 20,
        Some(eml),
    )
    .await
    .drop_guard();
    let (user, pass) = d.new_user("mh");
    let to = format!("{user}@example.test");
    let (keep_id, drop_id) = (format!("{}@t", unique("keep")), format!("{}@t", unique("drop")));
    let keep_q = send("boss@evil.test", &to, &message("boss@evil.test", "wire", &keep_id, "pay now"))
        .await
        .expect("held");
    let drop_q = send("boss@evil.test", &to, &message("boss@evil.test", "wire", &drop_id, "pay now"))
        .await
        .expect("held");
    let held = held_queue_ids();
    assert!(held.contains(&keep_q) && held.contains(&drop_q), "{held:?}");

    let db = web.rt.settings().db_path.clone();
    let q = |sql: &str| crate::common::harness::query_i64(&db, sql);
    let row = |qid: &str| q(&format!("SELECT message FROM milter_decisions WHERE queue_id = '{qid}'"));
    let (keep, drop) = (row(&keep_q), row(&drop_q));
    assert_eq!(
        q(&format!("SELECT quarantined FROM messages WHERE id = {keep}")),
        1,
        "listed with the quarantine"
    );
    let copy: String = web
        .rt
        .store()
        .message_detail(keep)
        .await
        .unwrap()
        .unwrap()
        .eml_path
        .expect("a copy is kept");
    assert!(String::from_utf8_lossy(&std::fs::read(copy).unwrap()).contains(&keep_id));

    let r = web.rt.request_op(keep, OpKind::Release, "analyst:ann").await.unwrap();
    assert_eq!(r.state, "done", "{r:?}");
    let r = web.rt.request_op(drop, OpKind::Delete, "admin:root").await.unwrap();
    assert_eq!(r.state, "done", "{r:?}");
    let held = held_queue_ids();
    assert!(!held.contains(&keep_q) && !held.contains(&drop_q), "{held:?}");
    assert!(matches!(
        web.rt.request_op(keep, OpKind::Delete, "admin:root").await,
        Err(OpError::NotQuarantined)
    ));

    crate::common::eventually(Duration::from_secs(30), "the released mail in INBOX", || {
        let (user, pass, keep_id) = (user.clone(), pass.clone(), keep_id.clone());
        async move {
            let inbox = headers_in(d, &user, &pass, "INBOX").await;
            inbox.iter().any(|h| h.contains(&keep_id)).then_some(inbox)
        }
    })
    .await;
    let inbox = headers_in(d, &user, &pass, "INBOX").await;
    assert!(!inbox.iter().any(|h| h.contains(&drop_id)), "deleted mail was delivered");
    assert_eq!(
        q(&format!(
            "SELECT COUNT(*) FROM audit WHERE event = 'release_done' AND actor = 'analyst:ann' AND message = {keep}"
        )),
        1
    );
    assert_eq!(
        q(&format!(
            "SELECT COUNT(*) FROM audit WHERE event = 'delete_done' AND actor = 'admin:root' AND message = {drop}"
        )),
        1
    );
    assert_eq!(
        q(&format!(
            "SELECT COUNT(*) FROM messages WHERE id IN ({keep}, {drop}) AND quarantined = 0"
        )),
        2
    );
}
