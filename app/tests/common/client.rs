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
        let mut out: Vec<_> = fetched
            .iter()
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
        let uid = self
            .list(from)
            .await
            .into_iter()
            .find(|(_, _, m)| m.contains(id))
            .map(|(u, _, _)| u)
            .unwrap_or_else(|| panic!("{id} not in {from}"));
        self.s.select(from).await.unwrap();
        self.s.uid_mv(uid.to_string(), to).await.unwrap();
    }

    /// Message-ID lines in a folder.
    pub async fn ids(&mut self, mailbox: &str) -> Vec<String> {
        self.list(mailbox).await.into_iter().map(|(_, _, m)| m).collect()
    }
}
