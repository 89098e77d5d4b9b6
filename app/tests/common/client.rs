//! A plain test IMAP client (another "user" of the mailbox), used to deliver
//! mail and to inspect folders independently of Postern.

use async_imap::Session;
use futures::TryStreamExt;
use tokio::net::TcpStream;

pub struct TestClient {
    s: Session<TcpStream>,
}

impl TestClient {
    pub async fn connect(port: u16, user: &str, pass: &str) -> TestClient {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut c = async_imap::Client::new(tcp);
        c.read_response().await.unwrap();
        let s = c.login(user, pass).await.map_err(|(e, _)| e).unwrap();
        TestClient { s }
    }

    pub async fn append(&mut self, mailbox: &str, flags: Option<&str>, raw: &[u8]) {
        self.s.append(mailbox, flags, None, raw).await.unwrap();
    }

    /// APPEND with an INTERNALDATE (`"01-Jun-2025 10:00:00 +0000"`), for mail that arrived long ago.
    pub async fn append_at(&mut self, mailbox: &str, flags: Option<&str>, date: &str, raw: &[u8]) {
        self.s.append(mailbox, flags, Some(date), raw).await.unwrap();
    }

    pub async fn create(&mut self, mailbox: &str) {
        self.s.create(mailbox).await.unwrap();
    }

    pub async fn delete(&mut self, mailbox: &str) {
        let _ = self.s.close().await;
        self.s.delete(mailbox).await.unwrap();
    }

    pub async fn exists(&mut self, mailbox: &str) -> bool {
        let names: Vec<_> = self.s.list(Some(""), Some(mailbox)).await.unwrap().try_collect().await.unwrap();
        names.iter().any(|n| n.name() == mailbox)
    }

    pub async fn uidvalidity(&mut self, mailbox: &str) -> u32 {
        self.s.examine(mailbox).await.unwrap().uid_validity.unwrap()
    }

    /// UIDVALIDITY, or None while the server refuses the EXAMINE (Dovecot
    /// answers SERVERBUG for a moment after a folder another session has
    /// selected is deleted and recreated).
    pub async fn try_uidvalidity(&mut self, mailbox: &str) -> Option<u32> {
        self.s.examine(mailbox).await.ok()?.uid_validity
    }

    /// (uid, sorted flags without \Recent, Message-ID header line) per message.
    pub async fn list(&mut self, mailbox: &str) -> Vec<(u32, Vec<String>, String)> {
        let mb = self.s.examine(mailbox).await.unwrap();
        if mb.exists == 0 {
            return Vec::new();
        }
        let fetched: Vec<_> = self
            .s
            .uid_fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        // An unsolicited FETCH (another session changed flags meanwhile)
        // carries no UID and no header: not one of the listed messages.
        let mut out: Vec<_> = fetched
            .iter()
            .filter(|f| f.uid.is_some() && f.header().is_some())
            .map(|f| {
                let mut flags: Vec<String> = f
                    .flags()
                    .map(|x| postern::imap::flag_name(&x))
                    .filter(|x| x != "\\Recent")
                    .collect();
                flags.sort();
                let mid = String::from_utf8_lossy(f.header().unwrap_or_default()).trim().to_string();
                (f.uid.unwrap(), flags, mid)
            })
            .collect();
        out.sort();
        out
    }

    pub async fn count(&mut self, mailbox: &str) -> usize {
        self.list(mailbox).await.len()
    }

    /// Moves the message whose Message-ID contains `id` (what a user does
    /// when filing mail), with MOVE.
    pub async fn move_message(&mut self, from: &str, id: &str, to: &str) {
        let uid = self.uid_of(from, id).await;
        self.s.select(from).await.unwrap();
        self.s.uid_mv(uid.to_string(), to).await.unwrap();
    }

    /// The UID of the message in `mailbox` whose Message-ID contains `id`.
    async fn uid_of(&mut self, mailbox: &str, id: &str) -> u32 {
        self.list(mailbox)
            .await
            .into_iter()
            .find(|(_, _, m)| m.contains(id))
            .map(|(u, _, _)| u)
            .unwrap_or_else(|| panic!("{id} not in {mailbox}"))
    }

    /// Adds `flags` (`(\\Seen)`) to the message whose Message-ID contains
    /// `id`, then leaves the folder.
    pub async fn add_flags(&mut self, mailbox: &str, id: &str, flags: &str) {
        use futures::TryStreamExt;
        let uid = self.uid_of(mailbox, id).await;
        self.s.select(mailbox).await.unwrap();
        let _: Vec<_> = self
            .s
            .uid_store(uid.to_string(), format!("+FLAGS {flags}"))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        // imap4d writes maildir flags when the folder is left; until then
        // other sessions (Postern's) do not see them. UNSELECT, not CLOSE:
        // CLOSE would expunge mail marked \Deleted.
        self.s.run_command_and_check_ok("UNSELECT").await.unwrap();
    }

    /// Message-ID lines in a folder.
    pub async fn ids(&mut self, mailbox: &str) -> Vec<String> {
        self.list(mailbox).await.into_iter().map(|(_, _, m)| m).collect()
    }
}

/// EXPUNGE in `mailbox`, as a client does when it empties its trash, over a
/// raw connection: imap4d answers with `* n EXPUNGED`, which async-imap
/// cannot parse.
pub async fn raw_expunge(port: u16, user: &str, pass: &str, mailbox: &str) {
    use std::io::{BufRead, BufReader, Write};
    let (user, pass, mailbox) = (user.to_string(), pass.to_string(), mailbox.to_string());
    tokio::task::spawn_blocking(move || {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        for (tag, cmd) in [
            ("a", format!("LOGIN \"{user}\" \"{pass}\"")),
            ("b", format!("SELECT \"{mailbox}\"")),
            ("c", "EXPUNGE".into()),
        ] {
            write!(w, "{tag} {cmd}\r\n").unwrap();
            loop {
                line.clear();
                assert!(r.read_line(&mut line).unwrap() > 0, "connection closed during {cmd}");
                if line.starts_with(&format!("{tag} ")) {
                    assert!(line.starts_with(&format!("{tag} OK")), "{cmd}: {line}");
                    break;
                }
            }
        }
        let _ = write!(w, "d LOGOUT\r\n");
    })
    .await
    .unwrap();
}
