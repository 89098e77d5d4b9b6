//! Issue 17, item 6: what users taught is exported as a labelled folder
//! tree (`postern export-training`) that `postern simulate` and
//! `models/train.py --feedback` read.

use crate::common::harness::{KEY, base64_key, write_config};
use crate::common::stack::repo_root;
use postern::clock::{SharedClock, SystemClock};
use postern::domain::MessageKey;
use postern::scan::learn::Class;
use postern::store::{BootItem, BootOutcome, Store, UserFeedback};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn postern(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(args)
        .env_clear()
        .env("POSTERN_CONFIG", dir.join("config.yaml"))
        .env("POSTERN_DATA_DIR", dir)
        .env("POSTERN_DB_ENCRYPTION_KEY", base64_key())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn key(mailbox: &str, uid: u32) -> MessageKey {
    MessageKey {
        account: "main".into(),
        mailbox: mailbox.into(),
        uidvalidity: 1,
        uid,
    }
}

fn raw(n: u32) -> Vec<u8> {
    format!("From: a{n}@example.test\r\nSubject: message {n}\r\nMessage-ID: <{n}@export.test>\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Two spam lessons (one a Junk move, one from the bootstrap) and a
/// message filed into Junk and then back: the latest opinion, ham, wins.
async fn seed(dir: &Path) {
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(&dir.join("postern.db"), &KEY, clock).unwrap();
    let keep = |n: u32| {
        let r = raw(n);
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&r));
        let path = postern::store::eml::store(&dir.join("eml"), "main", &sha, &r).unwrap();
        (sha, path.to_string_lossy().into_owned())
    };
    let feedback = |n: u32, mailbox: &str, class: Class| {
        let (sha256, eml_path) = keep(n);
        UserFeedback {
            key: key(mailbox, n),
            sha256,
            message_id: Some(format!("{n}@export.test")),
            class,
            source: format!("moved into {mailbox} by the user"),
            eml_path,
        }
    };
    assert!(store.record_user_spam(feedback(1, "Junk", Class::Spam)).await.unwrap());
    assert!(store.record_user_spam(feedback(2, "Junk", Class::Spam)).await.unwrap());
    let item = BootItem {
        key: key("Junk", 3),
        class: Class::Spam,
    };
    store
        .begin_bootstrap("main", 30, vec![item.clone()], "1 in Junk".into())
        .await
        .unwrap();
    let (sha256, eml_path) = keep(3);
    let learned = BootOutcome::Learn {
        sha256,
        message_id: None,
        eml_path,
    };
    assert!(store.finish_boot_item(&item, learned).await.unwrap());
    // Message 2 goes back to the inbox: the user changed their mind.
    let (sha256, _) = keep(2);
    let back = postern::store::NewMessage {
        key: key("INBOX", 9),
        meta: postern::store::MessageMeta {
            sha256,
            size: 10,
            ..Default::default()
        },
    };
    let (_, path) = keep(2);
    store.record_user_returned(&back, "Junk", path).await.unwrap();
}

#[tokio::test]
async fn issue_17_feedback_exports_as_a_tree_simulate_and_train_py_read() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), 143, "u", "secret-Pw-1", &["INBOX"]);
    seed(dir.path()).await;
    let out = dir.path().join("export");
    let (code, stdout, stderr) = postern(dir.path(), &["export-training", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("spam: 2 message(s)") && stdout.contains("ham: 1 message(s)"),
        "{stdout}"
    );
    let count = |label: &str| std::fs::read_dir(out.join(label).join("main")).map_or(0, |d| d.count());
    assert_eq!((count("spam"), count("ham")), (2, 1), "the latest opinion only");
    let manifest = std::fs::read_to_string(out.join("labels.csv")).unwrap();
    assert_eq!(manifest.lines().count(), 4, "{manifest}");
    assert!(
        manifest.contains("bootstrap: in Junk") && manifest.contains("moved back from Junk"),
        "{manifest}"
    );

    // A second export into the same folder would mix old labels in.
    let (code, _, stderr) = postern(dir.path(), &["export-training", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");

    // `postern simulate` reads the tree: 2 spam and 1 ham from source `main`.
    let json = dir.path().join("sim.json");
    let (code, report, stderr) = postern(dir.path(), &["simulate", out.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["messages"], 3, "{summary}");
    let n = |class: &str| {
        summary["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["class"] == class && g["source"] == "main")
            .map(|g| g["n"].clone())
    };
    assert_eq!((n("spam"), n("ham")), (Some(2.into()), Some(1.into())), "{summary}");

    // models/train.py --feedback reads it through corpus.folder_messages.
    let models = repo_root().join("models");
    let py = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sys; sys.path.insert(0, {models:?}); import corpus\n\
             print(sorted((m.label, m.source, len(m.raw()) > 0) for m in corpus.folder_messages({out:?})))"
        ))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&py.stdout);
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    assert_eq!(
        listed.trim(),
        "[('ham', 'feedback-main', True), ('spam', 'feedback-main', True), ('spam', 'feedback-main', True)]"
    );
}

/// Issue 17, item 6: decided reports are labels too. A confirmed report is
/// `phish`, a rejected one `ham` (the operator said the user was wrong);
/// an undecided one is no label yet.
#[tokio::test]
async fn issue_17_confirmed_and_rejected_reports_export_as_phish_and_ham() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), 143, "u", "secret-Pw-1", &["INBOX"]);
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(&dir.path().join("postern.db"), &KEY, clock).unwrap();
    let mut ids = Vec::new();
    for n in [11u32, 12, 13] {
        let r = raw(n);
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&r));
        let path = postern::store::eml::store(&dir.path().join("eml"), "main", &sha256, &r).unwrap();
        let report = postern::store::NewReport {
            key: key("Report Phishing", n),
            sha256,
            message_id: Some(format!("{n}@export.test")),
            from_addr: Some(format!("a{n}@example.test")),
            subject: Some(format!("message {n}")),
            decision: Default::default(),
            eml_path: path.to_string_lossy().into_owned(),
        };
        ids.push(store.record_report(report).await.unwrap().unwrap());
    }
    let decide = |id: i64, to: &'static str| {
        let store = store.clone();
        async move {
            assert!(
                store
                    .advance_report(id, &["new", "open"], to, "admin:admin", "test", String::new())
                    .await
                    .unwrap()
            );
        }
    };
    decide(ids[0], "confirmed").await;
    decide(ids[1], "rejected").await;
    drop(store);

    let out = dir.path().join("export");
    let (code, stdout, stderr) = postern(dir.path(), &["export-training", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("phish: 1 message(s)") && stdout.contains("ham: 1 message(s)"),
        "{stdout}"
    );
    let names = |label: &str| -> Vec<String> {
        std::fs::read_dir(out.join(label).join("main"))
            .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    let sha = |n: u32| format!("{}.eml", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw(n))));
    assert_eq!(names("phish"), vec![sha(11)], "the confirmed report");
    assert_eq!(names("ham"), vec![sha(12)], "the rejected report");
    assert!(names("spam").is_empty(), "the open report is no label yet");
    let manifest = std::fs::read_to_string(out.join("labels.csv")).unwrap();
    assert_eq!(manifest.lines().count(), 3, "{manifest}");
    assert!(
        manifest.contains(&format!("report #{} confirmed by admin:admin", ids[0]))
            && manifest.contains(&format!("report #{} rejected by admin:admin", ids[1])),
        "{manifest}"
    );

    // `postern simulate` reads the phish folder as phishing.
    let json = dir.path().join("sim.json");
    let (code, report, stderr) = postern(dir.path(), &["simulate", out.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["messages"], 2, "{summary}");
    assert!(
        summary["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["class"] == "phish" && g["n"] == 1),
        "{summary}"
    );
}
