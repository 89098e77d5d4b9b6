//! The command line: config validation reports every problem at once with a
//! non-zero exit, and the secret helpers produce values the validator accepts.

use std::io::Write;
use std::process::{Command, Stdio};

fn postern(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_config_reports_every_problem_with_path_and_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "accounts:\n  - name: a\n    host: mail.example.org\n    tls: plain\n    user: u\n    pass: changeme\n    mode: loud\n  - host: h\n    user: u\n    pass_file: missing.pass\n",
    )
    .unwrap();
    for cmd in ["check-config", "run"] {
        let (code, _, err) = postern(
            &[cmd],
            &[
                ("POSTERN_CONFIG", cfg.to_str().unwrap()),
                ("POSTERN_DB_ENCRYPTION_KEY", "changeme"),
                ("POSTERN_IMAP_IDLE_SECS", "soon"),
            ],
        );
        assert_eq!(code, 2, "{cmd}: {err}");
        for want in [
            "POSTERN_DB_ENCRYPTION_KEY",
            "POSTERN_IMAP_IDLE_SECS",
            "accounts[0].tls",
            "accounts[0].pass",
            "accounts[0].mode",
            "accounts[1].name",
            "accounts[1].pass_file",
        ] {
            assert!(err.contains(want), "{cmd}: {want} missing from:\n{err}");
        }
        assert!(err.contains("hint:"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn check_config_handles_missing_file_and_broken_yaml() {
    let (code, _, err) = postern(&["check-config"], &[("POSTERN_CONFIG", "/nonexistent/config.yaml")]);
    assert_eq!(code, 2);
    assert!(err.contains("POSTERN_CONFIG") && err.contains("POSTERN_DB_ENCRYPTION_KEY"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, "accounts: [ {name: a\n").unwrap();
    let (code, _, err) = postern(&["check-config"], &[("POSTERN_CONFIG", cfg.to_str().unwrap())]);
    assert_eq!(code, 2);
    assert!(err.contains("not valid YAML"), "{err}");
}

#[test]
fn generated_secrets_pass_check_config() {
    let (code, secrets, _) = postern(&["gen-secrets"], &[]);
    assert_eq!(code, 0);
    let key = secrets
        .lines()
        .find_map(|l| l.strip_prefix("POSTERN_DB_ENCRYPTION_KEY="))
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("a.pass");
    std::fs::write(&pass, "s3cret-imap-pw\n").unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "accounts:\n  - {name: a, host: imap.example.org, user: u, pass_file: a.pass}\n",
    )
    .unwrap();
    let (code, out, err) = postern(
        &["check-config"],
        &[("POSTERN_CONFIG", cfg.to_str().unwrap()), ("POSTERN_DB_ENCRYPTION_KEY", &key)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 account(s)"), "{out}");
}

#[test]
fn issue_22_check_config_warns_about_typos_and_a_missing_admin_hash() {
    let (_, secrets, _) = postern(&["gen-secrets"], &[]);
    let key = secrets
        .lines()
        .find_map(|l| l.strip_prefix("POSTERN_DB_ENCRYPTION_KEY="))
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "accounts:\n  - {name: a, host: imap.example.org, user: u, pass: s3cret-imap-pw, mode: shadow}\n",
    )
    .unwrap();
    let (code, _, err) = postern(
        &["check-config"],
        &[
            ("POSTERN_CONFIG", cfg.to_str().unwrap()),
            ("POSTERN_DB_ENCRYPTION_KEY", &key),
            ("POSTERN_TRHESHOLD_FLAG", "5"),
        ],
    );
    // Warnings do not fail the check; they are printed.
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: POSTERN_TRHESHOLD_FLAG"), "{err}");
    assert!(err.contains("did you mean POSTERN_THRESHOLD_FLAG?"), "{err}");
    assert!(err.contains("warning: POSTERN_ADMIN_PASSWORD_HASH: is not set"), "{err}");
}

#[test]
fn hash_password_reads_stdin_and_refuses_weak_input() {
    let run = |input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = run("a long enough passphrase\n");
    assert!(ok.status.success());
    let line = String::from_utf8_lossy(&ok.stdout);
    let hash = line
        .trim()
        .trim_start_matches("POSTERN_ADMIN_PASSWORD_HASH='")
        .trim_end_matches('\'');
    assert!(bcrypt::verify("a long enough passphrase", hash).unwrap());
    assert!(!run("short\n").status.success());
}

#[test]
fn ioc_import_list_and_delete_or_nothing_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, "accounts: []\n").unwrap();
    let key = crate::common::harness::base64_key();
    let data = dir.path().join("data");
    let env = [
        ("POSTERN_CONFIG", cfg.to_str().unwrap()),
        ("POSTERN_DB_ENCRYPTION_KEY", key.as_str()),
        ("POSTERN_DATA_DIR", data.to_str().unwrap()),
    ];
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "type,value,source\ndomain,evil.test,soc\nip,999.1.1.1,soc\nsha256,abc,soc\n").unwrap();
    let (code, _, err) = postern(&["ioc", "import", bad.to_str().unwrap()], &env);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 problem(s)") && err.contains("row 3") && err.contains("nothing imported"),
        "{err}"
    );
    let (_, out, _) = postern(&["ioc", "list"], &env);
    assert!(out.is_empty(), "nothing stored: {out}");

    let good = dir.path().join("iocs.jsonl");
    std::fs::write(
        &good,
        "{\"type\":\"domain\",\"value\":\"Evil.TEST\",\"source\":\"soc\",\"confidence\":90}\n{\"type\":\"cidr\",\"value\":\"198.51.100.9/24\"}\n",
    )
    .unwrap();
    let (code, out, err) = postern(&["ioc", "import", good.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 2"), "{out}");
    let (_, out, _) = postern(&["ioc", "list"], &env);
    assert!(
        out.contains("domain evil.test [soc 90 high]") && out.contains("cidr 198.51.100.0/24 [manual 75 high]"),
        "{out}"
    );
    let id = out
        .lines()
        .find(|l| l.contains("evil.test"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_start_matches('#')
        .to_string();
    let (code, out, _) = postern(&["ioc", "delete", &id], &env);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = postern(&["ioc", "delete", &id], &env);
    assert_eq!(code, 1, "{err}");
    let (_, out, _) = postern(&["ioc", "list"], &env);
    assert!(!out.contains("evil.test") && out.contains("198.51.100.0/24"), "{out}");
}

#[test]
fn issue_18_scan_applies_the_daemon_size_limit_without_reading_the_file() {
    // Issue 18: `postern scan` read a 200 MB file whole (589 MiB RSS). Over
    // POSTERN_MAX_MESSAGE_BYTES it now gives the daemon's oversize decision.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.eml");
    // Sparse: 200 MB of size, nothing written (reading it would still cost).
    std::fs::File::create(&big).unwrap().set_len(200 * 1024 * 1024).unwrap();
    let (code, out, err) = postern(&["scan", "--json", big.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "pass", "{out}");
    assert_eq!(v["tags"], serde_json::json!(["SIZE_OVER_LIMIT"]), "{out}");
    assert!(err.contains("over POSTERN_MAX_MESSAGE_BYTES"), "{err}");
    // The configured limit, not a fixed one.
    let small = dir.path().join("small.eml");
    std::fs::write(&small, format!("From: a@a.test\r\n\r\n{}", "x".repeat(2000))).unwrap();
    let (code, out, err) = postern(
        &["scan", "--json", small.to_str().unwrap()],
        &[("POSTERN_MAX_MESSAGE_BYTES", "1024")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("SIZE_OVER_LIMIT") && out.contains("1024-byte scan limit"), "{out}");
    let (code, out, _) = postern(&["scan", "--json", small.to_str().unwrap()], &[]);
    assert_eq!(code, 0);
    assert!(!out.contains("SIZE_OVER_LIMIT"), "{out}");
}
