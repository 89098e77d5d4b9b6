//! systemd `Type=notify`: the real binary reports READY=1 (with a status
//! line) once the dashboard is bound and the account is started, pings the
//! watchdog, and reports STOPPING=1 on SIGTERM before exiting cleanly.

use crate::common::harness::{Child, write_config};
use crate::common::stack::shared;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Datagrams received until one contains `want` (liveness bound only).
fn until(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.contains(want)) {
        assert!(start.elapsed() < Duration::from_secs(60), "no {want} from postern; got {seen:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[test]
fn notifies_systemd_when_ready_and_when_stopping() {
    let d = shared();
    let (user, pass) = d.new_user("notify");
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), d.imap_port, &user, &pass, &["INBOX"]);
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let child = Child::spawn_with(
        dir.path(),
        None,
        &[("NOTIFY_SOCKET", path.to_str().unwrap()), ("WATCHDOG_USEC", "400000")],
    );
    let mut seen = Vec::new();
    until(&sock, "READY=1", &mut seen);
    let ready = seen.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(
        ready.contains("STATUS=watching 1 account(s); dashboard on http://127.0.0.1:"),
        "{ready}"
    );
    until(&sock, "WATCHDOG=1", &mut seen);
    let pid = child.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    until(&sock, "STOPPING=1", &mut seen);
    let mut child = child;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "postern did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}
