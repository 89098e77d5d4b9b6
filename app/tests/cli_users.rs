//! Issue 22, item 1: `postern user add/list/passwd/remove` manage dashboard
//! users in the daemon's database; passwords come from stdin.

use std::io::Write;
use std::process::{Command, Stdio};

fn postern(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that needs no password may exit before reading it.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn user_add_list_passwd_and_remove() {
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
    let pw = "an analyst passphrase\n";
    let (code, out, err) = postern(&["user", "add", "ann", "--role", "analyst"], &env, pw);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added ann as analyst"), "{out}");
    for (args, why) in [
        (vec!["user", "add", "ann", "--role", "viewer"], "exists"),
        (vec!["user", "add", "admin", "--role", "admin"], "environment's admin"),
        (vec!["user", "add", "bob", "--role", "root"], "unknown role"),
        (vec!["user", "passwd", "nobody"], "no user"),
        (vec!["user", "remove", "nobody"], "no user"),
    ] {
        let (code, _, err) = postern(&args, &env, pw);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let (code, _, err) = postern(&["user", "add", "bob", "--role", "viewer"], &env, "short\n");
    assert_eq!(code, 2);
    assert!(err.contains("password refused"), "{err}");
    let (code, out, _) = postern(&["user", "list"], &env, "");
    assert_eq!(code, 0);
    assert!(out.contains("ann\tanalyst") && !out.contains("bob"), "{out}");
    let (code, out, err) = postern(&["user", "passwd", "ann"], &env, "a brand new passphrase\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sessions ended"), "{out}");
    let (code, _, err) = postern(&["user", "remove", "ann"], &env, "");
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = postern(&["user", "list"], &env, "");
    assert!(!out.contains("ann"), "{out}");
}
