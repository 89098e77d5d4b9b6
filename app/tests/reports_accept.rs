//! Reported phishing and campaign actions (issue 17, items 3 and 4)
//! against the real Dovecot and Rspamd controller: a user drops a phish
//! into the report folder, the operator is told through a webhook on
//! loopback and confirms it, and the same campaign is clawed back from a
//! second account, with IOCs, sightings, a spam lesson Rspamd counts, and
//! every step in the audit log. Rejecting returns the message to the
//! reporter's INBOX; a high enough re-scan confirms without the operator;
//! a campaign can be quarantined everywhere and its sender blocked.

use crate::common::client::TestClient;
use crate::common::harness::account;
use crate::common::receiver::Receiver;
use crate::common::rspamd;
use crate::common::stack::shared;
use crate::common::web::{Admin, Scanners, WebPostern};
use crate::common::{audit_rows_at_least, eventually, unique};
use postern::config::AccountConfig;
use postern::domain::Mode;
use postern::manager::ListenerState;
use postern::store::ReportRow;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

// As long as the other real-peer tests wait: CI runs them all at once on two cores.
const WAIT: Duration = Duration::from_secs(60);
const REPORT: &str = "Report Phishing";
const ATTACHMENT: &[u8] = b"Invoice INV-2291: amount due 4,310.00 EUR. Pay at the link in the message.\r\n";

/// Letters only (Rspamd's tokenizer splits digits off), so each run's
/// words are its own and Bayes has not classed them yet.
fn letters(tag: &str) -> String {
    tag.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_digit(10).map_or(c, |d| (b'a' + d as u8) as char))
        .collect()
}

/// One copy of a phishing run: the same sender, subject, link, attachment
/// and text in every mailbox; only the Message-ID and recipient differ.
fn phish(tag: &str, to: &str, id: &str) -> Vec<u8> {
    let own = letters(tag);
    let words: String = [
        "mailbox",
        "quota",
        "verify",
        "account",
        "suspend",
        "password",
        "confirm",
        "urgent",
        "billing",
        "security",
        "notice",
        "update",
        "credentials",
        "restore",
    ]
    .iter()
    .map(|w| format!("{w}{own} "))
    .collect();
    let att = base64_lines(ATTACHMENT);
    format!(
        "From: IT Desk <helpdesk@mailbox-{tag}.test>\r\nTo: {to}\r\nSubject: Mailbox quota exceeded {tag}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@test.postern>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n\
         Restore access at https://login-{tag}.test/owa/verify?u=7 before it is suspended.\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"invoice.dat\"\r\nContent-Disposition: attachment; filename=\"invoice.dat\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{att}\r\n--b1--\r\n"
    )
    .into_bytes()
}

fn base64_lines(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn reporting(name: &str, user: &str, pass: &str) -> AccountConfig {
    let mut a = account(name, shared().imap_port, user, pass, &["INBOX"]);
    a.report_folder = Some(REPORT.into());
    a
}

/// Waits until every listener of `accounts` (INBOX and report folder) is in IDLE.
async fn wait_listening(p: &WebPostern, accounts: &[&str]) {
    let report = format!("{REPORT} (reports)");
    let folders = ["INBOX", report.as_str()];
    eventually(WAIT, "INBOX and report listeners idling", || async {
        let st = p.rt.manager().status();
        accounts
            .iter()
            .all(|a| {
                folders.iter().all(|m| {
                    st.iter()
                        .any(|s| s.account == *a && s.mailbox == *m && s.state == ListenerState::Idling)
                })
            })
            .then_some(())
    })
    .await;
}

/// The row of the message whose Message-ID contains `id`, once recorded.
async fn message_id(p: &WebPostern, account: &str, id: &str) -> i64 {
    eventually(WAIT, &format!("{id} recorded in {account}"), || async {
        let rows = p.rt.store().message_rows(account).await.unwrap();
        rows.iter()
            .find(|m| m.message_id.as_deref().is_some_and(|x| x.contains(id)) && m.verdict.is_some())
            .map(|m| m.id)
    })
    .await
}

async fn report_in(p: &WebPostern, account: &str, state: &str) -> ReportRow {
    eventually(WAIT, &format!("a report from {account} in state {state}"), || async {
        let rows = p.rt.report_queue(None, 50).await.unwrap();
        rows.into_iter().find(|r| r.account == account && r.state == state)
    })
    .await
}

async fn events(p: &WebPostern, account: &str) -> Vec<String> {
    let rows = p.rt.store().audit_rows(Some(account), None, 500).await.unwrap();
    rows.into_iter().map(|r| r.event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_report_claws_the_campaign_back_from_another_mailbox() {
    let d = shared();
    let (ua, pa) = d.new_user("repa");
    let (ub, pb) = d.new_user("repb");
    let hook = Receiver::start().await;
    let hook_url = format!("{}/hook", hook.base);
    let (url, rpass) = d.rspamd_controller.clone().expect("rspamd controller in the stack");
    let p = WebPostern::start_with(
        vec![reporting("alice", &ua, &pa), reporting("bob", &ub, &pb)],
        Scanners::Local,
        |s| {
            s.scan.rspamd_controller_url = Some(url);
            s.scan.rspamd_password = Some(rpass);
            s.intel.allow_loopback_for_tests = true;
            s.background.notify.webhook_url = Some(hook_url);
        },
    )
    .await;
    p.rt.spawn_learning(p.shutdown.clone());
    p.rt.spawn_reports(p.shutdown.clone());
    wait_listening(&p, &["alice", "bob"]).await;

    // The same run reaches both mailboxes and passes: nothing knows it yet.
    let tag = unique("rp");
    let subject = format!("Mailbox quota exceeded {tag}");
    let (ida, idb) = (format!("a-{tag}"), format!("b-{tag}"));
    let (mut ca, mut cb) = (
        TestClient::connect(d.imap_port, &ua, &pa).await,
        TestClient::connect(d.imap_port, &ub, &pb).await,
    );
    ca.append("INBOX", None, &phish(&tag, &ua, &ida)).await;
    cb.append("INBOX", None, &phish(&tag, &ub, &idb)).await;
    let (ma, mb) = (message_id(&p, "alice", &ida).await, message_id(&p, "bob", &idb).await);
    for m in [ma, mb] {
        let s = p.rt.store().message_summary(m).await.unwrap().unwrap();
        assert!(matches!(s.verdict.as_deref(), Some("pass" | "flag")), "delivered: {s:?}");
    }

    // Alice reports it; the operator hears about it and sees it queued.
    ca.move_message("INBOX", &ida, REPORT).await;
    let r = report_in(&p, "alice", "open").await;
    assert_eq!(r.reporter, "user:alice");
    assert_eq!(r.subject.as_deref(), Some(subject.as_str()));
    let told = eventually(WAIT, "the webhook notified", || async {
        hook.all()
            .into_iter()
            .find(|x| String::from_utf8_lossy(&x.body).contains("reported a message as phishing"))
    })
    .await;
    assert_eq!(told.path, "hook", "{told:?}");
    let admin = Admin::login(&p.base).await;
    let (code, queue) = admin.get("/api/reports").await;
    assert_eq!(code, 200);
    assert!(
        queue["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == r.id && x["state"] == "open"),
        "{queue}"
    );

    // One click confirms it.
    let learned_before = rspamd::learned().await;
    let (code, out) = admin.post(&format!("/api/reports/{}/confirm", r.id)).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["state"], "confirmed", "{out}");
    let (code, again) = admin.post(&format!("/api/reports/{}/confirm", r.id)).await;
    assert_eq!(code, 400, "confirmed once only: {again}");

    // IOCs for the sender, the link and the attachment, with source and expiry.
    let iocs = p.rt.store().all_indicators().await.unwrap();
    let from_report: Vec<_> = iocs.iter().filter(|i| i.ind.source == "report").collect();
    let has = |kind: &str, want: &dyn Fn(&str) -> bool| {
        from_report
            .iter()
            .any(|i| i.ind.kind == kind && want(&i.ind.value) && i.ind.expires_at.is_some())
    };
    let sender = format!("helpdesk@mailbox-{tag}.test");
    let att_sha = hex::encode(Sha256::digest(ATTACHMENT));
    assert!(has("email", &|v: &str| v == sender), "{from_report:?}");
    assert!(has("url", &|v: &str| v.contains(&format!("login-{tag}.test"))), "{from_report:?}");
    assert!(has("sha256", &|v: &str| v == att_sha), "{from_report:?}");
    let expires = chrono::DateTime::parse_from_rfc3339(from_report[0].ind.expires_at.as_deref().unwrap()).unwrap();
    let days = (expires.to_utc() - chrono::Utc::now()).num_days();
    assert!((28..=30).contains(&days), "POSTERN_REPORT_IOC_DAYS defaults to 30: {days}");

    // Bob's copy is clawed back to quarantine, with sightings of the IOCs.
    eventually(WAIT, "bob's copy in Quarantine", || async {
        let q = TestClient::connect(d.imap_port, &ub, &pb).await.ids("Quarantine").await;
        q.iter().any(|m| m.contains(&idb)).then_some(())
    })
    .await;
    assert!(cb.ids("INBOX").await.iter().all(|m| !m.contains(&idb)), "gone from bob's INBOX");
    // The re-check's verdict, sightings and audit row are written in one
    // transaction after the move.
    audit_rows_at_least(p.rt.store(), "bob", "retro_quarantine", 1).await;
    let bob = p.rt.store().message_summary(mb).await.unwrap().unwrap();
    assert_eq!(bob.verdict.as_deref(), Some("quarantine"), "{bob:?}");
    let sightings = p.rt.store().message_sightings(mb).await.unwrap();
    for kind in ["email", "url", "sha256"] {
        assert!(
            sightings.iter().any(|(src, _, k, _)| src == "report" && k == kind),
            "{kind} sighting: {sightings:?}"
        );
    }
    let retro = p.rt.store().audit_rows(Some("bob"), Some("retro_quarantine"), 10).await.unwrap();
    assert_eq!(retro.len(), 1, "{retro:?}");

    // The lesson reaches Rspamd once. Its Bayes is shared by the whole suite
    // (and by earlier runs of this same campaign template), so its default
    // learn condition may answer 204 "already in class spam" instead of
    // learning: then Rspamd must indeed class this campaign as Bayes spam.
    let lesson = eventually(WAIT, "the spam lesson answered by Rspamd", || async {
        let l = p.rt.store().lessons(50).await.unwrap();
        l.into_iter()
            .find(|l| l.class == "spam" && matches!(l.state.as_str(), "learned" | "skipped"))
    })
    .await;
    if lesson.state == "learned" {
        assert!(rspamd::learned().await > learned_before, "Rspamd's learned count rose");
    } else {
        let symbols = rspamd::symbols(&phish(&tag, &ua, &ida)).await;
        assert!(
            symbols.contains_key("BAYES_SPAM"),
            "declined only as already spam: {lesson:?} {symbols:?}"
        );
    }

    // Every step is in the audit log.
    let alice = events(&p, "alice").await;
    for e in [
        "report_received",
        "report_queued",
        "report_confirmed",
        "report_iocs",
        "report_clawback",
        "report_learn",
        // The lesson's own row says what Rspamd did with it.
        if lesson.state == "learned" {
            "user_learned_spam"
        } else {
            "learn_skipped"
        },
    ] {
        assert!(alice.iter().any(|x| x == e), "{e} in {alice:?}");
    }
    let confirmed = p.rt.store().audit_rows(Some("alice"), Some("report_confirmed"), 5).await.unwrap();
    assert_eq!(confirmed[0].actor, "admin:admin", "{confirmed:?}");
    let bob_events = events(&p, "bob").await;
    assert!(
        bob_events.iter().any(|e| e == "recheck_requested") && bob_events.iter().any(|e| e == "retro_quarantine"),
        "{bob_events:?}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_report_goes_back_to_the_reporters_inbox_and_teaches_nothing() {
    let d = shared();
    let (u, pw) = d.new_user("rrej");
    let p = WebPostern::start(vec![reporting("carol", &u, &pw)], Scanners::Local).await;
    p.rt.spawn_reports(p.shutdown.clone());
    wait_listening(&p, &["carol"]).await;
    let tag = unique("rj");
    let id = format!("n-{tag}");
    let subject = format!("Team lunch {tag}");
    let mut c = TestClient::connect(d.imap_port, &u, &pw).await;
    c.append("INBOX", None, &crate::common::mail("colleague@partner.test", &subject, &id))
        .await;
    message_id(&p, "carol", &id).await;
    c.move_message("INBOX", &id, REPORT).await;
    let r = report_in(&p, "carol", "open").await;

    let admin = Admin::login(&p.base).await;
    let (code, out) = admin.post(&format!("/api/reports/{}/reject", r.id)).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["state"], "rejected", "{out}");
    assert!(c.ids("INBOX").await.iter().any(|m| m.contains(&id)), "back in the INBOX");
    assert!(c.ids(REPORT).await.iter().all(|m| !m.contains(&id)), "gone from the report folder");
    let row = p.rt.store().report(r.id).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.decided_by.as_deref()), ("rejected", Some("admin:admin")));
    let rejected = p.rt.store().audit_rows(Some("carol"), Some("report_rejected"), 5).await.unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].detail.contains("back to INBOX"), "{rejected:?}");
    assert!(p.rt.store().lessons(50).await.unwrap().is_empty(), "nothing learned");
    assert!(
        p.rt.store()
            .all_indicators()
            .await
            .unwrap()
            .iter()
            .all(|i| i.ind.source != "report"),
        "no IOCs"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_scoring_above_the_auto_confirm_score_is_confirmed_without_the_operator() {
    let d = shared();
    let (u, pw) = d.new_user("rauto");
    let p = WebPostern::start_with(vec![reporting("dave", &u, &pw)], Scanners::Local, |s| {
        s.intel.report_auto_confirm = Some(4.0);
    })
    .await;
    p.rt.spawn_reports(p.shutdown.clone());
    wait_listening(&p, &["dave"]).await;
    let tag = unique("ra");
    let mut c = TestClient::connect(d.imap_port, &u, &pw).await;
    // A display name that carries another domain's address scores 5
    // (SPOOF_DISPLAY_NAME_ADDRESS); the plain one scores nothing.
    let spoofed = format!(
        "From: \"security@bank.example\" <alerts@spoof-{tag}.test>\r\nTo: {u}\r\nSubject: Verify {tag}\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <s-{tag}@test.postern>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nVerify at https://verify-{tag}.test/now today.\r\n"
    );
    c.append(REPORT, None, spoofed.as_bytes()).await;
    c.append(
        REPORT,
        None,
        &crate::common::mail("friend@partner.test", &format!("Plain {tag}"), &format!("p-{tag}")),
    )
    .await;

    let auto = report_in(&p, "dave", "confirmed").await;
    assert!(auto.score >= 4.0, "{auto:?}");
    assert_eq!(auto.decided_by.as_deref(), Some(postern::runtime::AUTO_ACTOR));
    assert_eq!(auto.subject.as_deref(), Some(format!("Verify {tag}").as_str()));
    let plain = report_in(&p, "dave", "open").await;
    assert!(plain.score < 4.0, "{plain:?}");
    assert_eq!(plain.subject.as_deref(), Some(format!("Plain {tag}").as_str()));
    // The state turns "confirmed" first (that is the guard against deciding
    // twice); IOCs, claw-back and the lesson follow, each with an audit row.
    // Wait for the last of them rather than racing the background tick.
    eventually(WAIT, "the automatic confirmation finished", || async {
        let learn = p.rt.store().audit_rows(Some("dave"), Some("report_learn"), 5).await.unwrap();
        (!learn.is_empty()).then_some(())
    })
    .await;
    let iocs = p.rt.store().all_indicators().await.unwrap();
    assert!(
        iocs.iter()
            .any(|i| i.ind.source == "report" && i.ind.value == format!("alerts@spoof-{tag}.test")),
        "{iocs:?}"
    );
    let confirmed = p.rt.store().audit_rows(Some("dave"), Some("report_confirmed"), 5).await.unwrap();
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
    assert_eq!(confirmed[0].actor, postern::runtime::AUTO_ACTOR);
    assert!(confirmed[0].detail.contains("POSTERN_REPORT_AUTO_CONFIRM_SCORE"), "{confirmed:?}");
    p.stop().await;
}

async fn campaign_of(admin: &Admin, subject: &str) -> Value {
    eventually(WAIT, "the campaign listed", || async move {
        let (_, all) = admin.get("/api/campaigns").await;
        all.as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["messages"].as_array().is_some_and(|m| m.iter().any(|m| m["subject"] == subject)))
            })
            .cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_is_quarantined_everywhere_released_and_its_sender_blocked() {
    let d = shared();
    let (ua, pa) = d.new_user("cmpa");
    let (ub, pb) = d.new_user("cmpb");
    let (us, ps) = d.new_user("cmps");
    let mut shadow = account("sam", d.imap_port, &us, &ps, &["INBOX"]);
    shadow.mode = Mode::Shadow;
    let p = WebPostern::start(
        vec![
            account("erin", d.imap_port, &ua, &pa, &["INBOX"]),
            account("finn", d.imap_port, &ub, &pb, &["INBOX"]),
            shadow,
        ],
        Scanners::Local,
    )
    .await;
    eventually(WAIT, "three INBOX listeners idling", || async {
        let st = p.rt.manager().status();
        (st.iter()
            .filter(|s| s.mailbox == "INBOX" && s.state == ListenerState::Idling)
            .count()
            == 3)
            .then_some(())
    })
    .await;
    let tag = unique("cq");
    let subject = format!("Mailbox quota exceeded {tag}");
    let mut clients = Vec::new();
    for (who, u, pw) in [("e", &ua, &pa), ("f", &ub, &pb), ("s", &us, &ps)] {
        let mut c = TestClient::connect(d.imap_port, u, pw).await;
        c.append("INBOX", None, &phish(&tag, u, &format!("{who}-{tag}"))).await;
        clients.push(c);
    }
    // Finn has filed his copy away already: it is found there.
    let archive = format!("Archive-{tag}");
    clients[1].create(&archive).await;
    for (a, who) in [("erin", "e"), ("finn", "f"), ("sam", "s")] {
        message_id(&p, a, &format!("{who}-{tag}")).await;
    }
    clients[1].move_message("INBOX", &format!("f-{tag}"), &archive).await;
    let admin = Admin::login(&p.base).await;
    let c = campaign_of(&admin, &subject).await;
    assert_eq!(c["mailboxes"], 3, "{c}");
    let id = c["id"].as_i64().unwrap();

    let (code, out) = admin.post(&format!("/api/campaigns/{id}/quarantine")).await;
    assert_eq!(code, 200, "{out}");
    assert_eq!(out["action"], "quarantine", "{out}");
    let lines: Vec<&str> = out["results"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("(sam)") && l.contains("shadow")), "{lines:?}");
    for who in ["e", "f"] {
        let (u, pw) = if who == "e" { (&ua, &pa) } else { (&ub, &pb) };
        eventually(WAIT, &format!("{who}'s copy in Quarantine"), || async {
            let q = TestClient::connect(d.imap_port, u, pw).await.ids("Quarantine").await;
            q.iter().any(|m| m.contains(&format!("{who}-{tag}"))).then_some(())
        })
        .await;
    }
    assert!(clients[1].ids(&archive).await.is_empty(), "taken from finn's own folder");
    assert!(
        clients[2].ids("INBOX").await.iter().any(|m| m.contains(&format!("s-{tag}"))),
        "shadow mode never moves mail"
    );
    for a in ["erin", "finn"] {
        // On a slow machine the API answers "queued" before the move; its
        // record follows the move.
        let done = audit_rows_at_least(p.rt.store(), a, "operator_quarantine", 1).await;
        assert_eq!(done.len(), 1, "{a}: {done:?}");
        assert_eq!(done[0].actor, "admin:admin");
        let m = p.rt.store().message_detail(done[0].message.unwrap()).await.unwrap().unwrap();
        let eml = m.eml_path.expect("an EML copy is kept");
        assert!(std::fs::metadata(&eml).unwrap().len() > 0, "{eml}");
    }
    assert!(done_not(&p, "sam").await, "the shadow account's refusal is audited");
    let (_, after) = admin.get("/api/campaigns").await;
    let c = after.as_array().unwrap().iter().find(|c| c["id"] == id).unwrap().clone();
    let q = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["quarantined"] == true)
        .count();
    assert_eq!(q, 2, "{c}");

    // Block the sender: on the block list, applied at once.
    let (code, out) = admin.post(&format!("/api/campaigns/{id}/block-sender")).await;
    assert_eq!(code, 200, "{out}");
    let sender = format!("helpdesk@mailbox-{tag}.test");
    assert_eq!(out["results"][0], format!("{sender}: blocked"), "{out}");
    let (_, lists) = admin.get("/api/lists").await;
    assert!(lists.to_string().contains(&sender), "{lists}");
    let (_, again) = admin.post(&format!("/api/campaigns/{id}/block-sender")).await;
    assert_eq!(again["results"][0], format!("{sender}: already on the block list"), "{again}");
    clients[0].append("INBOX", None, &phish(&tag, &ua, &format!("e2-{tag}"))).await;
    eventually(WAIT, "new mail from the sender is quarantined", || async {
        let q = TestClient::connect(d.imap_port, &ua, &pa).await.ids("Quarantine").await;
        q.iter().any(|m| m.contains(&format!("e2-{tag}"))).then_some(())
    })
    .await;

    // Release everywhere brings the quarantined copies back.
    let (code, out) = admin.post(&format!("/api/campaigns/{id}/release")).await;
    assert_eq!(code, 200, "{out}");
    assert!(out["results"].as_array().unwrap().len() >= 2, "{out}");
    eventually(WAIT, "finn's copy released", || async {
        let inbox = TestClient::connect(d.imap_port, &ub, &pb).await.ids("INBOX").await;
        inbox.iter().any(|m| m.contains(&format!("f-{tag}"))).then_some(())
    })
    .await;
    p.stop().await;
}

async fn done_not(p: &WebPostern, account: &str) -> bool {
    let rows =
        p.rt.store()
            .audit_rows(Some(account), Some("operator_quarantine_not_done"), 5)
            .await
            .unwrap();
    rows.len() == 1 && rows[0].detail.contains("shadow mode")
}
