//! The pipeline against the real Rspamd and clamd of the test stack, the
//! fail-closed paths, and the whole chain through Dovecot.

use crate::common::client::TestClient;
use crate::common::harness::{Postern, account, policy, tuning};
use crate::common::stack::shared;
use crate::common::{eventually, unique};
use postern::domain::Verdict;
use postern::scan::scanners::{attachments, clamav, html, lists, rspamd, spoof, structure};
use postern::scan::{FailureMode, InputOptions, Pipeline, Policy, Scanner};
use std::sync::Arc;
use std::time::Duration;

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn eicar() -> Vec<u8> {
    // Assembled from two halves so this source file is not itself a test virus.
    [&b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-"[..], b"TEST-FILE!$H+H*"].concat()
}

fn with_attachment(name: &str, data: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let lines: Vec<&str> = b64.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!(
        "From: Sender <sender@example.net>\r\nTo: user@example.org\r\nSubject: file {name}\r\nMessage-ID: <{}@t>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\n\
         Content-Type: application/octet-stream; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
        unique("att"),
        lines.join("\r\n")
    )
    .into_bytes()
}

fn full(rspamd_url: &str, clamd: &str, clamd_timeout: Duration) -> Pipeline {
    let scanners: Vec<Arc<dyn Scanner>> = vec![
        Arc::new(structure::StructureScanner),
        Arc::new(lists::ListScanner::new(policy())),
        Arc::new(attachments::AttachmentScanner),
        Arc::new(html::HtmlScanner),
        Arc::new(spoof::SpoofScanner::new(spoof::DEFAULT_PROTECTED.lines())),
        Arc::new(rspamd::RspamdScanner::new(rspamd_url, Duration::from_secs(20), FailureMode::Closed).unwrap()),
        Arc::new(clamav::ClamavScanner::new(
            clamd,
            clamd_timeout,
            FailureMode::Closed,
            25 * 1024 * 1024,
        )),
    ];
    Pipeline::new(scanners, Policy::default_policy().unwrap(), InputOptions::default())
}

fn stack_pipeline() -> Pipeline {
    let d = shared();
    full(
        d.rspamd_url.as_deref().expect("rspamd in the stack"),
        d.clamd_addr.as_deref().expect("clamd in the stack"),
        Duration::from_secs(20),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gtube_is_rejected_by_rspamd_and_junked() {
    let raw = format!(
        "From: a@example.net\r\nTo: b@example.org\r\nSubject: gtube\r\nMessage-ID: <{}@t>\r\n\r\n{GTUBE}\r\n",
        unique("g")
    );
    let d = stack_pipeline().scan(raw.into_bytes()).await;
    assert!(d.tags.contains(&"RSPAMD_REJECT".to_string()), "{d:?}");
    // Spam, not a threat (issue 14): Junk, not quarantine.
    assert_eq!(d.verdict, Verdict::Junk, "{}", d.reason);
    let ham = "From: a@example.net\r\nTo: b@example.org\r\nSubject: lunch\r\nMessage-ID: <h1@t>\r\n\r\nLunch at noon?\r\n";
    let d = stack_pipeline().scan(ham.as_bytes().to_vec()).await;
    assert_eq!(d.verdict, Verdict::Pass, "{}", d.reason);
    assert!(d.reports.iter().all(|r| r.error.is_none()), "{:?}", d.reports);
}

/// Rspamd's forgery checks through the real Rspamd: an HTML-only message
/// that says Outlook wrote it (Outlook always sends a text part too) is
/// `RSPAMD_FORGED_MUA`; the same headers on Outlook's real
/// multipart/alternative shape are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_outlook_is_tagged_and_the_real_shape_is_not() {
    let head = |ct: &str| {
        format!(
            "From: Sales <sales@example.net>\r\nTo: b@example.org\r\nSubject: your order\r\nMessage-ID: <{}@example.net>\r\n\
             Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nX-Mailer: Microsoft Outlook 16.0\r\nContent-Type: {ct}\r\n\r\n",
            unique("fo")
        )
    };
    let html = "<html><head><meta charset=utf-8></head><body><p>Your order has shipped.</p></body></html>";
    let forged = format!("{}{html}\r\n", head("text/html; charset=utf-8"));
    let d = stack_pipeline().scan(forged.into_bytes()).await;
    let f = d.reports.iter().flat_map(|r| &r.findings).find(|f| f.tag == rspamd::TAG_FORGED_MUA);
    assert!(
        f.is_some_and(|f| f.detail.as_deref().unwrap_or_default().contains("FORGED_OUTLOOK_HTML")),
        "{d:?}"
    );
    assert_eq!(d.verdict, Verdict::Pass, "evidence, never a verdict alone: {}", d.reason);
    let real = format!(
        "{}--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour order has shipped.\r\n\
         --a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--a--\r\n",
        head("multipart/alternative; boundary=\"a\"")
    );
    let d = stack_pipeline().scan(real.into_bytes()).await;
    assert!(!d.tags.iter().any(|t| t == rspamd::TAG_FORGED_MUA), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eicar_attachment_is_malware() {
    let d = stack_pipeline().scan(with_attachment("eicar.com", &eicar())).await;
    assert!(d.tags.contains(&"AV_VIRUS".to_string()), "{d:?}");
    assert!(d.verdict >= Verdict::Quarantine, "{}", d.reason);
    let av = d.reports.iter().find(|r| r.scanner == "clamav").unwrap();
    assert!(av.findings[0].detail.as_deref().unwrap().contains("EICAR"), "{av:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clamav_testfile_inside_a_mail_is_malware() {
    let d = shared();
    let clam = clamav::ClamavScanner::new(
        d.clamd_addr.as_deref().unwrap(),
        Duration::from_secs(20),
        FailureMode::Closed,
        25 * 1024 * 1024,
    );
    let p = Pipeline::new(vec![Arc::new(clam)], Policy::default_policy().unwrap(), InputOptions::default());
    let dir = std::path::Path::new("/usr/share/clamav-testfiles");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("clamav-testfiles installed by the test stack")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 40, "{} files", files.len());
    let mut missed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let dec = p.scan(with_attachment(&name, &data)).await;
        if !dec.tags.contains(&"AV_VIRUS".to_string()) {
            missed.push(format!("{name}: {}", dec.reason));
        }
    }
    assert!(missed.is_empty(), "not detected:\n{}", missed.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rspamd_stopped_means_quarantine_never_pass() {
    let d = shared();
    // Nothing listens here: exactly what a stopped Rspamd looks like to a client.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let p = full(&format!("http://{dead}"), d.clamd_addr.as_deref().unwrap(), Duration::from_secs(20));
    let ham = "From: a@example.net\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nhello\r\n";
    let dec = p.scan(ham.as_bytes().to_vec()).await;
    assert_eq!(dec.verdict, Verdict::Quarantine, "{}", dec.reason);
    assert!(
        dec.reason.contains("fail-closed") && dec.reason.contains("rspamd"),
        "{}",
        dec.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clamd_that_accepts_but_never_answers_is_cut_off_and_quarantines() {
    let d = shared();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            conns.push(s); // keep it open, say nothing
        }
    });
    let p = full(d.rspamd_url.as_deref().unwrap(), &addr, Duration::from_millis(800));
    let start = std::time::Instant::now();
    let ham = "From: a@example.net\r\nTo: b@example.org\r\nSubject: hello\r\n\r\nhello\r\n";
    let dec = p.scan(ham.as_bytes().to_vec()).await;
    assert!(start.elapsed() < Duration::from_secs(15), "the deadline was enforced");
    let av = dec.reports.iter().find(|r| r.scanner == "clamav").unwrap();
    assert!(av.error.as_deref().unwrap().contains("timed out"), "{av:?}");
    assert_eq!(dec.verdict, Verdict::Quarantine, "{}", dec.reason);
    hold.abort();
}

fn gtube_mail() -> Vec<u8> {
    format!(
        "From: a@example.net\r\nSubject: gtube\r\nMessage-ID: <{}@t>\r\n\r\n{GTUBE}\r\n",
        unique("g")
    )
    .into_bytes()
}

/// Issue 14: spam lands in the account's `\Junk` folder (found by
/// SPECIAL-USE; the stack's Dovecot marks `Junk`) with only `$Junk` added,
/// malware in quarantine, both with an EML copy and an audit row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_gtube_lands_in_junk_and_eicar_in_quarantine_with_eml_and_audit() {
    let d = shared();
    let (user, pass) = d.new_user("scan");
    let p = Postern::start_with(
        vec![account("a", d.imap_port, &user, &pass, &["INBOX"])],
        tuning(),
        None,
        Arc::new(stack_pipeline()),
    )
    .await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", Some("(\\Seen)"), &gtube_mail()).await;
    c.append("INBOX", None, &with_attachment("eicar.com", &eicar())).await;
    c.append(
        "INBOX",
        None,
        b"From: friend@example.net\r\nSubject: hi\r\nMessage-ID: <friendly@t>\r\n\r\nSee you soon.\r\n",
    )
    .await;
    p.wait_done("a", 3).await;
    eventually(Duration::from_secs(30), "spam in Junk, malware in Quarantine", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.count("Junk").await == 1 && c.count("Quarantine").await == 1 && c.count("INBOX").await == 1).then_some(())
    })
    .await;
    let junk = c.list("Junk").await;
    assert_eq!(
        junk[0].1,
        vec!["$Junk".to_string(), "\\Seen".to_string()],
        "only $Junk added: {junk:?}"
    );
    let rows: Vec<_> = p.store.message_rows("a").await.unwrap();
    let verdicts: Vec<_> = rows.iter().filter_map(|r| r.verdict.as_deref()).collect();
    assert_eq!(verdicts.iter().filter(|v| **v == "junk").count(), 1, "{rows:?}");
    assert_eq!(verdicts.iter().filter(|v| **v == "quarantine").count(), 1, "{rows:?}");
    for r in rows.iter().filter(|r| matches!(r.verdict.as_deref(), Some("junk" | "quarantine"))) {
        assert!(std::path::Path::new(r.eml_path.as_deref().unwrap()).is_file());
        let reports: Vec<postern::domain::ScannerReport> = serde_json::from_str(r.scan_json.as_deref().unwrap()).unwrap();
        assert!(reports.iter().any(|x| x.scanner == "rspamd") && reports.iter().any(|x| x.scanner == "clamav"));
    }
    let junked = rows.iter().find(|r| r.verdict.as_deref() == Some("junk")).unwrap();
    assert_eq!(junked.location_mailbox.as_deref(), Some("Junk"));
    assert_eq!(p.store.audit_rows(Some("a"), Some("action_done"), 10).await.unwrap().len(), 2);
    let junk_route = p.manager.status().into_iter().find_map(|s| s.junk).unwrap();
    assert_eq!(junk_route.folder.as_deref(), Some("Junk"), "{junk_route:?}");
    p.manager.shutdown().await;
}

/// Issue 14: with `junk_folder: off` (as without a `\Junk` folder) spam
/// stays in place, marked `$Junk`, and nothing else changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_without_a_junk_folder_spam_is_only_marked() {
    let d = shared();
    let (user, pass) = d.new_user("nojunk");
    let mut a = account("a", d.imap_port, &user, &pass, &["INBOX"]);
    a.junk_folder = postern::config::JunkFolder::Off;
    let p = Postern::start_with(vec![a], tuning(), None, Arc::new(stack_pipeline())).await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.append("INBOX", None, &gtube_mail()).await;
    p.wait_done("a", 1).await;
    eventually(Duration::from_secs(30), "spam marked $Junk in INBOX", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        let l = c.list("INBOX").await;
        (l.len() == 1 && l[0].1 == vec!["$Junk".to_string()]).then_some(())
    })
    .await;
    assert_eq!(c.count("Junk").await, 0);
    let route = p.manager.status().into_iter().find_map(|s| s.junk).unwrap();
    assert!(route.folder.is_none() && route.why.contains("off"), "{route:?}");
    p.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_18_control_characters_in_from_and_to_still_reach_rspamd() {
    // Issue 18: a control character in From or To made reqwest refuse the
    // header, Rspamd was never asked and the mail was quarantined
    // fail-closed ("builder error"). The values are sanitised now.
    let raw = b"From: <ali\x01ce@example.net>\r\nTo: <b\x00ob@example.org>, <c\x7fc@example.org>\r\nSubject: hello\r\nMessage-ID: <x\x02@example.net>\r\n\r\nSee you at lunch.\r\n";
    let d = stack_pipeline().scan(raw.to_vec()).await;
    let r = d.reports.iter().find(|r| r.scanner == "rspamd").unwrap();
    assert_eq!(r.error, None, "{d:?}");
    assert!(d.tags.iter().any(|t| t == rspamd::TAG_RESULT), "{:?}", d.tags);
    assert!(!d.reason.contains("fail-closed"), "{}", d.reason);
}

#[test]
fn scan_cli_explains_every_scanner() {
    let d = shared();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gtube.eml");
    std::fs::write(&f, format!("From: a@example.net\r\nSubject: gtube\r\n\r\n{GTUBE}\r\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["scan", "--explain", f.to_str().unwrap()])
        .env_clear()
        .env("POSTERN_RSPAMD_URL", d.rspamd_url.as_deref().unwrap())
        .env("POSTERN_CLAMD_ADDR", d.clamd_addr.as_deref().unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("verdict: junk"), "{text}");
    for s in ["rspamd", "clamav", "attachments", "html", "spoof", "RSPAMD_REJECT"] {
        assert!(text.contains(s), "{s} missing:\n{text}");
    }
    let json = std::process::Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(["scan", "--json", f.to_str().unwrap()])
        .env_clear()
        .env("POSTERN_RSPAMD_URL", d.rspamd_url.as_deref().unwrap())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["verdict"], "junk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yara_hit_and_hot_reload_during_operation() {
    use postern::scan::scanners::yara::YaraScanner;
    let d = shared();
    let (user, pass) = d.new_user("yara");
    let rules = tempfile::tempdir().unwrap();
    let rule = |name: &str, marker: &str| format!("rule {name} {{ meta: severity = \"high\" strings: $m = \"{marker}\" condition: $m }}");
    std::fs::write(rules.path().join("a.yar"), rule("Alpha", "alpha-marker-91c")).unwrap();
    let y = Arc::new(YaraScanner::load(rules.path(), Duration::from_secs(5), FailureMode::Closed).unwrap());
    y.watch(Duration::from_millis(100));
    let pipeline = Pipeline::new(
        vec![Arc::new(lists::ListScanner::new(policy())), y.clone()],
        Policy::default_policy().unwrap(),
        InputOptions::default(),
    );
    let p = Postern::start_with(
        vec![account("a", d.imap_port, &user, &pass, &["INBOX"])],
        tuning(),
        None,
        Arc::new(pipeline),
    )
    .await;
    p.wait_watching("a").await;
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    let msg = |marker: &str| {
        format!(
            "From: a@example.net\r\nSubject: {marker}\r\nMessage-ID: <{}@t>\r\n\r\nbody {marker}\r\n",
            unique("y")
        )
        .into_bytes()
    };
    c.append("INBOX", None, &msg("alpha-marker-91c")).await;
    c.append("INBOX", None, &msg("beta-marker-22d")).await;
    p.wait_done("a", 2).await;
    // Add a rule while Postern runs: it is picked up without a restart.
    std::fs::write(rules.path().join("b.yar"), rule("Beta", "beta-marker-22d")).unwrap();
    let y2 = y.clone();
    eventually(Duration::from_secs(20), "rules reloaded", || {
        let h = y2.health();
        async move { (h.reloads >= 1).then_some(()) }
    })
    .await;
    c.append("INBOX", None, &msg("beta-marker-22d")).await;
    p.wait_done("a", 3).await;
    // A broken file keeps the old set active and is reported on health.
    std::fs::write(rules.path().join("c.yar"), "rule Broken { condition: nonsense here }").unwrap();
    let y3 = y.clone();
    eventually(Duration::from_secs(20), "compile error on health", || {
        let h = y3.health();
        async move { h.last_error.is_some().then_some(()) }
    })
    .await;
    c.append("INBOX", None, &msg("beta-marker-22d")).await;
    let rows = p.wait_done("a", 4).await;
    let verdicts: Vec<_> = rows.iter().map(|r| r.verdict.clone().unwrap_or_default()).collect();
    assert_eq!(verdicts, vec!["quarantine", "pass", "quarantine", "quarantine"], "{rows:?}");
    assert!(rows[0].tags.as_deref().unwrap().contains("YARA_MATCH_HIGH"));
    p.manager.shutdown().await;
}
