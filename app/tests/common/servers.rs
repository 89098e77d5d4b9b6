//! The IMAP servers the engine scenarios run against: the shared Dovecot,
//! and Cyrus IMAP 3.6, Courier-IMAP 5.0 and GNU Mailutils imap4d 3.15 from
//! Debian's packages, which scripts/test-stack.sh starts beside it
//! (`cyrus courier mailutils`; see scripts/peers-imap-others.sh for why they
//! run from unpacked packages).

use super::stack::{repo_root, shared};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Dovecot,
    Cyrus,
    Courier,
    Mailutils,
}

/// One running server and what the scenarios need to know about it.
#[derive(Debug)]
pub struct Peer {
    pub server: Server,
    pub port: u16,
    /// The personal namespace prefix, as the server sends it in NAMESPACE.
    pub prefix: &'static str,
    /// Whether the server advertises MOVE (Courier does not: COPY + UID EXPUNGE).
    pub has_move: bool,
    /// Whether it advertises UIDPLUS (imap4d does not: COPY + a guarded EXPUNGE).
    pub has_uidplus: bool,
    /// Whether its folders keep keywords (imap4d's do not: PERMANENTFLAGS without `\*`).
    pub keeps_keywords: bool,
    /// Appended to every login name (imap4d's users are USER@DOMAIN).
    login_suffix: &'static str,
    adduser: Option<PathBuf>,
    lock: Mutex<()>,
}

/// The Cyrus, Courier and Mailutils peers, started once per test run.
fn others() -> &'static BTreeMap<String, String> {
    static S: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    S.get_or_init(|| {
        let base = shared().base.clone();
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/test-stack.sh"))
            .args(["up", base.to_str().unwrap(), "cyrus", "courier", "mailutils"])
            .output()
            .expect("running scripts/test-stack.sh");
        assert!(
            out.status.success(),
            "the Cyrus, Courier and Mailutils test servers could not be started:\n{}\n\
             They come from Debian 12's cyrus-imapd, courier-imap and mailutils-imap4d packages, downloaded \
             and unpacked beside Dovecot. Start the stack as root with `make stack` (or `bash \
             scripts/test-stack.sh up {} dovecot rspamd clamav cyrus courier mailutils`), then run the tests again.",
            String::from_utf8_lossy(&out.stderr),
            base.display()
        );
        super::stack::parse_env(&base.join("peers.env"))
    })
}

impl Peer {
    pub fn get(server: Server) -> &'static Peer {
        static D: OnceLock<Peer> = OnceLock::new();
        static Y: OnceLock<Peer> = OnceLock::new();
        static O: OnceLock<Peer> = OnceLock::new();
        static M: OnceLock<Peer> = OnceLock::new();
        let (cell, key, prefix, has_move, has_uidplus, login_suffix) = match server {
            Server::Dovecot => (&D, "", "", true, true, ""),
            Server::Cyrus => (&Y, "CYRUS", "INBOX.", true, true, ""),
            Server::Courier => (&O, "COURIER", "INBOX.", false, true, ""),
            Server::Mailutils => (&M, "MAILUTILS", "", false, false, "@postern.test"),
        };
        cell.get_or_init(|| {
            let (port, adduser) = if server == Server::Dovecot {
                (shared().imap_port, None)
            } else {
                let env = others();
                let port = env[&format!("{key}_IMAP_PORT")].parse().unwrap();
                (port, Some(PathBuf::from(&env[&format!("{key}_ADDUSER")])))
            };
            Peer {
                server,
                port,
                prefix,
                has_move,
                has_uidplus,
                keeps_keywords: server != Server::Mailutils,
                login_suffix,
                adduser,
                lock: Mutex::new(()),
            }
        })
    }

    /// A folder's full name under the personal namespace (`INBOX.Work` on
    /// Cyrus and Courier, `Work` on Dovecot), as a user would configure it.
    pub fn folder(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A fresh user with an empty INBOX.
    pub fn new_user(&self, prefix: &str) -> (String, String) {
        let Some(adduser) = &self.adduser else {
            return shared().new_user(prefix);
        };
        let user = format!("{}{}", super::unique(prefix), self.login_suffix);
        let pass = format!("pw-{user}");
        let _g = self.lock.lock().unwrap();
        let out = Command::new(adduser).args([&user, &pass]).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            adduser.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // Cyrus creates the INBOX at the first login; both read their user
        // database per login, so this returns as soon as the user exists.
        for _ in 0..100 {
            if login_works(self.port, &user, &pass) {
                return (user, pass);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{:?} never accepted new user {user}", self.server);
    }
}

fn login_works(port: u16, user: &str, pass: &str) -> bool {
    let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
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
