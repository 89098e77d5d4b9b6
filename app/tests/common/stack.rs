//! The Dovecot test stack: the shared instance (started once per test run
//! via scripts/test-stack.sh) and private instances for tests that restart
//! the server or change its capabilities.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// One running Dovecot.
#[derive(Debug)]
pub struct Dovecot {
    pub base: PathBuf,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub ca_cert: PathBuf,
    pub conf: PathBuf,
    /// Rspamd normal worker URL (shared instance only).
    pub rspamd_url: Option<String>,
    /// clamd address (shared instance only).
    pub clamd_addr: Option<String>,
    /// Rspamd controller URL and password (shared instance only).
    pub rspamd_controller: Option<(String, String)>,
    users_lock: Mutex<()>,
    owned: bool,
}

pub fn parse_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

fn from_env(base: PathBuf, owned: bool) -> Dovecot {
    let env = parse_env(&base.join("peers.env"));
    Dovecot {
        imap_port: env["DOVECOT_IMAP_PORT"].parse().unwrap(),
        imaps_port: env["DOVECOT_IMAPS_PORT"].parse().unwrap(),
        ca_cert: PathBuf::from(&env["DOVECOT_CA_CERT"]),
        conf: PathBuf::from(&env["DOVECOT_CONF"]),
        rspamd_url: env
            .get("RSPAMD_URL")
            .filter(|_| env.get("RSPAMD_PID").is_some_and(|p| !p.is_empty()))
            .cloned(),
        clamd_addr: env
            .get("CLAMD_PORT")
            .filter(|_| env.get("CLAMD_PID").is_some_and(|p| !p.is_empty()))
            .map(|p| format!("127.0.0.1:{p}")),
        rspamd_controller: env
            .get("RSPAMD_CONTROLLER_URL")
            .zip(env.get("RSPAMD_ENABLE_PASSWORD"))
            .filter(|_| env.get("RSPAMD_PID").is_some_and(|p| !p.is_empty()))
            .map(|(u, p)| (u.clone(), p.clone())),
        base,
        users_lock: Mutex::new(()),
        owned,
    }
}

/// The shared instance (idempotent start; ~1 s when already running).
pub fn shared() -> &'static Dovecot {
    static S: OnceLock<Dovecot> = OnceLock::new();
    S.get_or_init(|| {
        let base = PathBuf::from(std::env::var("POSTERN_STACK_BASE").unwrap_or_else(|_| "/tmp/postern-stack".into()));
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/test-stack.sh"))
            .args(["up", base.to_str().unwrap(), "dovecot", "rspamd", "clamav"])
            .output()
            .expect("running scripts/test-stack.sh");
        assert!(out.status.success(), "test stack failed:\n{}", String::from_utf8_lossy(&out.stderr));
        from_env(base, false)
    })
}

/// A loopback port free at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Dovecot {
    /// A private instance under a fresh base dir, with optional capability override.
    pub fn private(name: &str, capability: Option<&str>) -> Dovecot {
        let base = PathBuf::from(format!("/tmp/pt-{}", super::unique(name)));
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("scripts/peers-setup.sh"))
            .args([base.to_str().unwrap(), "dovecot"])
            .env("DOVECOT_IMAP_PORT", free_port().to_string())
            .env("DOVECOT_IMAPS_PORT", free_port().to_string())
            .env("DOVECOT_LMTP_PORT", free_port().to_string())
            .env("DOVECOT_USERS", "alice:alicepass-1")
            .env("PEERS_SKIP_INSTALL", "1");
        if let Some(c) = capability {
            cmd.env("DOVECOT_IMAP_CAPABILITY", c);
        }
        let out = cmd.output().expect("peers-setup.sh");
        assert!(
            out.status.success(),
            "private dovecot failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        from_env(base, true)
    }

    /// Stops the server (SIGTERM, as an admin restart would).
    pub fn stop(&self) {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/peers-teardown.sh"))
            .arg(&self.base)
            .output()
            .unwrap();
        assert!(out.status.success(), "teardown: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts it again with the same config and ports.
    pub fn start(&self) {
        // The master keeps stdio open, so it must not be a pipe we wait on.
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(&self.conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "dovecot failed to start");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.imap_port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "dovecot did not come back");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Adds a fresh user; Dovecot's passwd-file is re-read when it changes.
    pub fn new_user(&self, prefix: &str) -> (String, String) {
        self.new_user_with(prefix, "")
    }

    /// A fresh user whose personal namespace is `INBOX.` with `.` as the
    /// delimiter, as Cyrus and Courier have by default (per-user userdb
    /// override; the shared server keeps its root namespace for others).
    pub fn new_user_inbox_namespace(&self, prefix: &str) -> (String, String) {
        self.new_user_with(prefix, "userdb_namespace/inbox/prefix=INBOX. userdb_namespace/inbox/separator=.")
    }

    /// A fresh user with passwd-file extra fields.
    pub fn new_user_with(&self, prefix: &str, extra: &str) -> (String, String) {
        let user = super::unique(prefix);
        let pass = format!("pw-{user}");
        let _g = self.users_lock.lock().unwrap();
        let users = self.base.join("dovecot/users");
        let mut f = std::fs::OpenOptions::new().append(true).open(&users).unwrap();
        writeln!(f, "{user}:{{PLAIN}}{pass}::::::{extra}").unwrap();
        drop(f);
        // Dovecot re-reads passwd-file when its mtime changes; two users
        // added within one second would share an mtime, so wait until the
        // new login works, nudging the mtime forward if needed.
        for i in 0..100 {
            if self.login_works(&user, &pass) {
                return (user, pass);
            }
            let t = std::time::SystemTime::now() + std::time::Duration::from_secs(i + 1);
            std::fs::File::options().write(true).open(&users).unwrap().set_modified(t).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("dovecot never accepted new user {user}");
    }

    fn login_works(&self, user: &str, pass: &str) -> bool {
        use std::io::{BufRead, BufReader};
        let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", self.imap_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let mut w = s;
        let _ = write!(w, "a LOGIN \"{user}\" \"{pass}\"\r\nb LOGOUT\r\n");
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            if line.starts_with("a ") {
                return line.starts_with("a OK");
            }
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new("bash")
                .arg(repo_root().join("scripts/peers-teardown.sh"))
                .arg(&self.base)
                .arg("--purge")
                .output();
        }
    }
}
