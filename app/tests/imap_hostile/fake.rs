//! A scripted IMAP server on 127.0.0.1 that can lie (Dovecot cannot be made
//! to): just enough of RFC 3501 for Postern's listener and action runner,
//! with a hook that replaces the answer to any `UID FETCH`.
//!
//! Messages carry no INTERNALDATE and SELECT sends no UIDNEXT (as Courier's
//! does not). Mail given to [`World::new`] arrives at the first IDLE, so
//! Postern sees it as new mail and acts on it; [`World::existing`] puts it
//! in INBOX before Postern starts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One `UID FETCH` as the server received it.
#[derive(Debug, Clone)]
pub struct FetchReq {
    /// Requested UIDs present in the selected mailbox, ascending.
    pub uids: Vec<u32>,
    /// The item list as sent, upper-cased.
    pub items: String,
}

/// What a hook answers: untagged response bytes (the server adds the tagged
/// OK), plus an optional literal body streamed after them.
pub enum Answer {
    Bytes(Vec<u8>),
    /// Prefix, then `len` filler bytes written in chunks (counted in
    /// `Fake::streamed`), then the suffix.
    Stream {
        prefix: Vec<u8>,
        len: u64,
        suffix: Vec<u8>,
    },
}

pub type Hook = Arc<dyn Fn(&FetchReq, &World) -> Option<Answer> + Send + Sync>;

/// The server's mail and what it was asked.
#[derive(Debug, Default)]
pub struct World {
    pub uidvalidity: u32,
    /// UIDVALIDITY goes up by one on every SELECT (a broken server).
    pub churn: bool,
    /// Answer IDLE's continuation with BYE (forces a reconnect per cycle).
    pub bye_on_idle: bool,
    /// Answer every CREATE with this (e.g. `NO Mailbox already exists`,
    /// without RFC 5530's `[ALREADYEXISTS]`).
    pub create_answer: Option<String>,
    pub boxes: BTreeMap<String, Vec<(u32, Vec<u8>)>>,
    /// Mail delivered to INBOX when a connection first sends IDLE.
    pub incoming: Vec<Vec<u8>>,
    /// Untagged lines sent to every connection at its next IDLE (what
    /// another session's changes look like to this one).
    pub push: Vec<String>,
    /// Answer STATUS with NO.
    pub status_refused: bool,
    /// Behave like GNU imap4d 3.15: nothing is pushed during IDLE (new
    /// mail shows only in the reply to DONE), and `UID SEARCH UID n:*`
    /// finds nothing.
    pub imap4d: bool,
    /// Answer `UID FETCH … (UID)` (the new-mail lookup) with NO.
    pub refuse_uid_fetch: bool,
    /// Send `[UIDNEXT n]` on SELECT, as most servers (not Courier) do.
    pub uidnext_on_select: bool,
    /// Answer a `UID SEARCH` with a `SINCE` key with BAD.
    pub refuse_since: bool,
    /// PERMANENTFLAGS without `\*`: the folder keeps no keywords (pymap).
    pub no_keywords: bool,
    /// Every command line received, with its connection number.
    pub log: Vec<(usize, String)>,
}

impl World {
    /// An empty INBOX; `inbox` arrives at the first IDLE.
    pub fn new(inbox: Vec<Vec<u8>>) -> World {
        let mut w = World::existing(Vec::new());
        w.incoming = inbox;
        w
    }

    /// INBOX already holds `inbox` when Postern first selects it.
    pub fn existing(inbox: Vec<Vec<u8>>) -> World {
        let mut boxes = BTreeMap::new();
        boxes.insert("INBOX".to_string(), numbered(inbox, 1));
        boxes.insert("Quarantine".to_string(), Vec::new());
        boxes.insert("Postern-Held".to_string(), Vec::new());
        World {
            uidvalidity: 7,
            boxes,
            ..Default::default()
        }
    }

    /// Appends mail to INBOX as another client would.
    pub fn deliver(&mut self, mail: Vec<Vec<u8>>) {
        let b = self.boxes.entry("INBOX".into()).or_default();
        let next = b.last().map_or(1, |(u, _)| u + 1);
        b.extend(numbered(mail, next));
    }

    /// INBOX deleted and created again by another client: a new
    /// UIDVALIDITY and UIDs from 1. Sessions that have it selected keep
    /// serving it under the UIDVALIDITY they selected (Courier).
    pub fn recreate_inbox(&mut self, mail: Vec<Vec<u8>>) -> u32 {
        self.uidvalidity += 100;
        self.boxes.insert("INBOX".into(), numbered(mail, 1));
        self.uidvalidity
    }

    /// INBOX rebuilt with UIDs from 1 under the same UIDVALIDITY (a server
    /// restored from a backup, or whose index was rebuilt carelessly).
    pub fn reuse_uids(&mut self, mail: Vec<Vec<u8>>) {
        self.boxes.insert("INBOX".into(), numbered(mail, 1));
    }

    /// The truthful FETCH response of one message (`seq`, `uid`, `body`).
    pub fn body_line(seq: usize, uid: u32, body: &[u8]) -> Vec<u8> {
        let mut v = format!("* {seq} FETCH (UID {uid} BODY[] {{{}}}\r\n", body.len()).into_bytes();
        v.extend_from_slice(body);
        v.extend_from_slice(b")\r\n");
        v
    }

    /// Sequence number and body of `uid` in INBOX.
    pub fn inbox(&self, uid: u32) -> Option<(usize, &[u8])> {
        self.boxes["INBOX"]
            .iter()
            .position(|(u, _)| *u == uid)
            .map(|i| (i + 1, self.boxes["INBOX"][i].1.as_slice()))
    }

    pub fn commands(&self) -> Vec<String> {
        self.log.iter().map(|(_, l)| l.clone()).collect()
    }
}

pub struct Fake {
    pub port: u16,
    pub world: Arc<Mutex<World>>,
    pub conns: Arc<AtomicUsize>,
    /// Filler bytes of streamed answers the socket accepted.
    pub streamed: Arc<AtomicU64>,
}

impl Fake {
    pub async fn start(world: World, hook: Option<Hook>) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let world = Arc::new(Mutex::new(world));
        let conns = Arc::new(AtomicUsize::new(0));
        let streamed = Arc::new(AtomicU64::new(0));
        let (w, c, s) = (world.clone(), conns.clone(), streamed.clone());
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let (w, s, hook) = (w.clone(), s.clone(), hook.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, n, w, s, hook).await;
                });
            }
        });
        Fake {
            port,
            world,
            conns,
            streamed,
        }
    }
}

fn numbered(mail: Vec<Vec<u8>>, first: u32) -> Vec<(u32, Vec<u8>)> {
    mail.into_iter().zip(first..).map(|(m, u)| (u, m)).collect()
}

const CAPS: &str = "IMAP4rev1 IDLE MOVE UIDPLUS";
/// GNU imap4d 3.15's, less its SASL mechanisms: no MOVE, no UIDPLUS.
const IMAP4D_CAPS: &str = "IMAP4rev1 NAMESPACE ID IDLE LITERAL+ UNSELECT";

fn unquote(s: &str) -> String {
    s.trim().trim_matches('"').to_string()
}

/// `1:3,7,9:*` against the UIDs of a mailbox.
fn in_set(set: &str, uid: u32, max: u32) -> bool {
    set.split(',').any(|part| {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let n = |x: &str| if x == "*" { max } else { x.parse().unwrap_or(0) };
        let (a, b) = (n(a), n(b));
        (a.min(b)..=a.max(b)).contains(&uid)
    })
}

async fn serve(
    sock: tokio::net::TcpStream,
    conn: usize,
    world: Arc<Mutex<World>>,
    streamed: Arc<AtomicU64>,
    hook: Option<Hook>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let caps = if world.lock().unwrap().imap4d { IMAP4D_CAPS } else { CAPS };
    w.write_all(format!("* OK [CAPABILITY {caps}] fake ready\r\n").as_bytes()).await?;
    let mut selected = String::from("INBOX");
    let mut pushed = world.lock().unwrap().push.len();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        world.lock().unwrap().log.push((conn, cmd.clone()));
        let mut parts = cmd.splitn(2, ' ');
        let tag = parts.next().unwrap_or("*").to_string();
        let rest = parts.next().unwrap_or("").to_string();
        let upper = rest.to_ascii_uppercase();
        let ok = |text: &str| format!("{tag} OK {text}\r\n");
        let mut out: Vec<u8> = Vec::new();
        let mut stream: Option<(Vec<u8>, u64, Vec<u8>)> = None;
        if upper.starts_with("CAPABILITY") {
            out.extend(format!("* CAPABILITY {caps}\r\n").bytes());
            out.extend(ok("done").bytes());
        } else if upper.starts_with("CREATE") && world.lock().unwrap().create_answer.is_some() {
            let answer = world.lock().unwrap().create_answer.clone().unwrap_or_default();
            out.extend(format!("{tag} {answer}\r\n").bytes());
        } else if upper.starts_with("LOGIN")
            || upper.starts_with("NOOP")
            || upper.starts_with("CREATE")
            || upper.starts_with("UID STORE")
            || upper.starts_with("UID EXPUNGE")
        {
            out.extend(ok("done").bytes());
        } else if upper.starts_with("LOGOUT") {
            w.write_all(format!("* BYE bye\r\n{}", ok("done")).as_bytes()).await?;
            return Ok(());
        } else if upper.starts_with("SELECT") || upper.starts_with("EXAMINE") {
            selected = unquote(rest.split_once(" ").map_or("", |x| x.1));
            let mut wd = world.lock().unwrap();
            if wd.churn {
                wd.uidvalidity += 1;
            }
            let exists = wd.boxes.get(&selected).map_or(0, Vec::len);
            let new_keywords = if wd.no_keywords { "" } else { " \\*" };
            out.extend(
                format!(
                    "* {exists} EXISTS\r\n* FLAGS (\\Seen \\Flagged \\Deleted)\r\n* OK [PERMANENTFLAGS (\\Seen \\Flagged \\Deleted{new_keywords})] ok\r\n* OK [UIDVALIDITY {}] ok\r\n",
                    wd.uidvalidity
                )
                .bytes(),
            );
            if wd.uidnext_on_select {
                let next = wd.boxes.get(&selected).and_then(|b| b.last()).map_or(1, |(u, _)| u + 1);
                out.extend(format!("* OK [UIDNEXT {next}] ok\r\n").bytes());
            }
            out.extend(format!("{tag} OK [READ-WRITE] selected\r\n").bytes());
        } else if upper.starts_with("STATUS") {
            let name = unquote(rest.split_whitespace().nth(1).unwrap_or(""));
            let wd = world.lock().unwrap();
            match wd.boxes.get(&name) {
                Some(msgs) if !wd.status_refused => {
                    let next = msgs.last().map_or(1, |(u, _)| u + 1);
                    out.extend(format!("* STATUS \"{name}\" (UIDVALIDITY {} UIDNEXT {next})\r\n", wd.uidvalidity).bytes());
                    out.extend(ok("done").bytes());
                }
                _ => out.extend(format!("{tag} NO no status\r\n").bytes()),
            }
        } else if upper.starts_with("FETCH") {
            // Only `FETCH n (UID)`: the last message's UID.
            let wd = world.lock().unwrap();
            let msgs = wd.boxes.get(&selected).cloned().unwrap_or_default();
            let seq: usize = upper.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
            if let Some((u, _)) = seq.checked_sub(1).and_then(|i| msgs.get(i)) {
                out.extend(format!("* {seq} FETCH (UID {u})\r\n").bytes());
            }
            out.extend(ok("done").bytes());
        } else if upper.starts_with("LIST") {
            let pattern = unquote(rest.rsplit_once(' ').map_or("*", |(_, p)| p));
            let wd = world.lock().unwrap();
            for name in wd.boxes.keys() {
                if pattern == "*" || *name == pattern {
                    out.extend(format!("* LIST () \"/\" \"{name}\"\r\n").bytes());
                }
            }
            out.extend(ok("done").bytes());
        } else if upper.starts_with("UID SEARCH") && upper.contains(" SINCE ") && world.lock().unwrap().refuse_since {
            out.extend(format!("{tag} BAD Unknown search key SINCE\r\n").bytes());
        } else if upper.starts_with("UID SEARCH") {
            let wd = world.lock().unwrap();
            let msgs = wd.boxes.get(&selected).cloned().unwrap_or_default();
            let max = msgs.last().map_or(0, |(u, _)| *u);
            let set = upper.split_whitespace().nth(3).unwrap_or("1:*").to_string();
            let blind = wd.imap4d && set.contains('*');
            let uids: Vec<String> = msgs
                .iter()
                .filter(|(u, _)| !blind && in_set(&set, *u, max))
                .map(|(u, _)| u.to_string())
                .collect();
            out.extend(format!("* SEARCH {}\r\n", uids.join(" ")).trim_end().bytes());
            out.extend(b"\r\n");
            out.extend(ok("done").bytes());
        } else if upper.starts_with("UID FETCH") {
            let mut it = rest.splitn(4, ' ');
            let (_, _, set, items) = (
                it.next(),
                it.next(),
                it.next().unwrap_or(""),
                it.next().unwrap_or("").to_ascii_uppercase(),
            );
            let refused = world.lock().unwrap().refuse_uid_fetch && items.trim() == "(UID)";
            if refused {
                w.write_all(format!("{tag} NO UID FETCH ranges refused\r\n").as_bytes()).await?;
                continue;
            }
            let wd = world.lock().unwrap();
            let msgs = wd.boxes.get(&selected).cloned().unwrap_or_default();
            let max = msgs.last().map_or(0, |(u, _)| *u);
            let uids: Vec<u32> = msgs.iter().filter(|(u, _)| in_set(set, *u, max)).map(|(u, _)| *u).collect();
            let req = FetchReq {
                uids: uids.clone(),
                items: items.clone(),
            };
            let hooked = if selected == "INBOX" {
                hook.as_ref().and_then(|h| h(&req, &wd))
            } else {
                None
            };
            match hooked {
                Some(Answer::Bytes(b)) => out.extend(b),
                Some(Answer::Stream { prefix, len, suffix }) => stream = Some((prefix, len, suffix)),
                None => {
                    for (i, (u, body)) in msgs.iter().enumerate() {
                        if !uids.contains(u) {
                            continue;
                        }
                        if items.contains("BODY") {
                            out.extend(World::body_line(i + 1, *u, body));
                        } else if items.contains("RFC822.SIZE") {
                            out.extend(format!("* {} FETCH (UID {u} RFC822.SIZE {})\r\n", i + 1, body.len()).bytes());
                        } else {
                            out.extend(format!("* {} FETCH (UID {u} FLAGS ())\r\n", i + 1).bytes());
                        }
                    }
                }
            }
            if stream.is_none() {
                out.extend(ok("done").bytes());
            }
        } else if upper.starts_with("UID MOVE") {
            let mut it = rest.splitn(4, ' ');
            let (_, _, uid, dest) = (it.next(), it.next(), it.next().unwrap_or("0"), unquote(it.next().unwrap_or("")));
            let uid: u32 = uid.parse().unwrap_or(0);
            let mut wd = world.lock().unwrap();
            let v = wd.uidvalidity;
            let pos = wd.boxes.get(&selected).and_then(|m| m.iter().position(|(u, _)| *u == uid));
            if let Some(pos) = pos {
                let (_, body) = wd.boxes.get_mut(&selected).unwrap().remove(pos);
                let target = wd.boxes.entry(dest).or_default();
                let new_uid = target.last().map_or(1, |(u, _)| u + 1);
                target.push((new_uid, body));
                out.extend(format!("* OK [COPYUID {v} {uid} {new_uid}] moved\r\n* {} EXPUNGE\r\n", pos + 1).bytes());
            }
            out.extend(ok("done").bytes());
        } else if upper.starts_with("IDLE") {
            let (bye, arrived, quiet) = {
                let mut wd = world.lock().unwrap();
                let mail = std::mem::take(&mut wd.incoming);
                let arrived = !mail.is_empty();
                wd.deliver(mail);
                (wd.bye_on_idle, arrived.then(|| wd.boxes["INBOX"].len()), wd.imap4d)
            };
            w.write_all(b"+ idling\r\n").await?;
            if let Some(n) = arrived.filter(|_| !quiet) {
                w.write_all(format!("* {n} EXISTS\r\n").as_bytes()).await?;
            }
            if bye {
                w.write_all(b"* BYE going away\r\n").await?;
                return Ok(());
            }
            // Sends what other sessions did until DONE arrives. fill_buf
            // keeps what it read when the timer wins, so no input is lost.
            loop {
                let lines: Vec<String> = world.lock().unwrap().push[pushed..].to_vec();
                pushed += lines.len();
                for l in lines.iter().filter(|_| !quiet) {
                    w.write_all(format!("{l}\r\n").as_bytes()).await?;
                }
                tokio::select! {
                    got = r.fill_buf() => if got?.is_empty() { return Ok(()) } else { break },
                    _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                }
            }
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if let Some(n) = arrived.filter(|_| quiet) {
                out.extend(format!("* {n} EXISTS\r\n").bytes());
            }
            out.extend(ok("idle done").bytes());
        } else {
            out.extend(format!("{tag} BAD unknown\r\n").bytes());
        }
        w.write_all(&out).await?;
        if let Some((prefix, len, suffix)) = stream {
            w.write_all(&prefix).await?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                w.write_all(&chunk[..n]).await?;
                streamed.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
            w.write_all(&suffix).await?;
            w.write_all(format!("{tag} OK done\r\n").as_bytes()).await?;
        }
    }
}
