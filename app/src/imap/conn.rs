//! Opening an authenticated IMAP session: TCP with keepalive, implicit TLS
//! or STARTTLS, greeting, LOGIN (or a SASL bearer token) and CAPABILITY,
//! each step under a deadline.

use super::stream::ImapStream;
use super::{ImapError, Result, sasl, tls};
use crate::config::{AccountConfig, TlsMode};
use async_imap::imap_proto::{Response, Status};
use async_imap::{Client, Session};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Literal limit of [`Conn::connect`]: the default message size limit
/// (`POSTERN_MAX_MESSAGE_BYTES`), for sessions that fetch no mail.
pub const DEFAULT_MAX_LITERAL: u64 = 50 * 1024 * 1024;

/// How to log in.
#[derive(Clone, Copy)]
pub enum Login<'a> {
    /// LOGIN with the account's password.
    Password,
    /// AUTHENTICATE OAUTHBEARER or XOAUTH2 with this access token.
    Bearer(&'a str),
}

/// An authenticated session plus what Postern knows about it.
#[derive(Debug)]
pub struct Conn {
    pub(super) session: Session<ImapStream>,
    pub(super) caps: BTreeSet<String>,
    pub(super) timeout: Duration,
    pub(super) selected: Option<String>,
    /// Folder signals not yet taken by the listener.
    pub(super) signals: super::FolderSignals,
    /// The selected folder's message count as last reported.
    pub(super) exists: Option<u32>,
    /// UTF8=ACCEPT is enabled: mailbox names travel as UTF-8.
    pub(super) utf8: bool,
    /// The personal namespace, once asked.
    pub(super) namespace: Option<super::names::Namespace>,
    /// Configured folder name -> the server's name for it.
    pub(super) aliases: std::collections::HashMap<String, String>,
}

/// Runs `fut` under `limit`, naming what timed out.
pub(super) async fn deadline<T>(limit: Duration, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(ImapError::Timeout {
            what: what.to_string(),
            secs: limit.as_secs(),
        }),
    }
}

impl Conn {
    /// Connects and logs in, with the default literal limit.
    pub async fn connect(acct: &AccountConfig, timeout: Duration) -> Result<Conn> {
        Self::connect_limited(acct, timeout, DEFAULT_MAX_LITERAL).await
    }

    /// Connects and logs in. No server response may carry more than
    /// `max_literal` literal bytes: a larger announcement is refused before
    /// anything is allocated for it ([`ImapError::LiteralTooLarge`]).
    pub async fn connect_limited(acct: &AccountConfig, timeout: Duration, max_literal: u64) -> Result<Conn> {
        Self::connect_with(acct, Login::Password, timeout, max_literal).await
    }

    /// [`Conn::connect_limited`] with an explicit way to log in.
    pub async fn connect_with(acct: &AccountConfig, login: Login<'_>, timeout: Duration, max_literal: u64) -> Result<Conn> {
        let addr = format!("{}:{}", acct.host, acct.port);
        let tcp = deadline(timeout, "TCP connect", async {
            TcpStream::connect((acct.host.trim_matches(['[', ']']), acct.port))
                .await
                .map_err(|source| ImapError::Connect {
                    addr: addr.clone(),
                    source,
                })
        })
        .await?;
        tcp.set_nodelay(true)?;
        // Keepalive catches a peer that vanished while we sit in IDLE:
        // 20 s of silence, then 4 probes 10 s apart, so a dead path is
        // dropped within about a minute (issue 18, item 9). A server that
        // is reachable but no longer answers is caught by the IDLE probe.
        let ka = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(20))
            .with_interval(Duration::from_secs(10))
            .with_retries(4);
        socket2::SockRef::from(&tcp).set_tcp_keepalive(&ka)?;

        let stream = match acct.tls {
            TlsMode::Plain => {
                let mut client = Client::new(ImapStream::plain(tcp, max_literal));
                deadline(timeout, "greeting", read_greeting(&mut client)).await?;
                return Self::login(client, acct, login, timeout).await;
            }
            TlsMode::Implicit => tls_wrap(tcp, acct, timeout, max_literal).await?,
            TlsMode::Starttls => {
                let mut client = Client::new(ImapStream::plain(tcp, max_literal));
                deadline(timeout, "greeting", read_greeting(&mut client)).await?;
                deadline(timeout, "STARTTLS", async {
                    client
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(|e| ImapError::Refused {
                            command: "STARTTLS".into(),
                            detail: e.to_string(),
                        })
                })
                .await?;
                // into_inner drops anything buffered after the OK, so no
                // plaintext injected before the handshake can leak into TLS.
                let Some(tcp) = client.into_inner().into_plain() else {
                    return Err(ImapError::Protocol("unexpected stream state after STARTTLS".into()));
                };
                tls_wrap(tcp, acct, timeout, max_literal).await?
            }
        };
        let mut client = Client::new(stream);
        if acct.tls == TlsMode::Implicit {
            deadline(timeout, "greeting", read_greeting(&mut client)).await?;
        }
        Self::login(client, acct, login, timeout).await
    }

    async fn login(mut client: Client<ImapStream>, acct: &AccountConfig, login: Login<'_>, timeout: Duration) -> Result<Conn> {
        let refused = |e: async_imap::error::Error, extra: Option<String>| match e {
            async_imap::error::Error::No(d) | async_imap::error::Error::Bad(d) => ImapError::Auth {
                user: acct.user.clone(),
                detail: match extra {
                    Some(x) => format!("{} (server said {x})", super::server_text(&d)),
                    None => super::server_text(&d),
                },
            },
            other => ImapError::Client(other),
        };
        let session = match login {
            Login::Password if acct.oauth2.is_some() => {
                // Never send the (empty) password of an OAuth2 account.
                return Err(ImapError::Auth {
                    user: acct.user.clone(),
                    detail: "this account logs in with OAuth2; no token was given".into(),
                });
            }
            Login::Password => {
                deadline(timeout, "LOGIN", async {
                    client.login(&acct.user, &acct.pass).await.map_err(|(e, _)| refused(e, None))
                })
                .await?
            }
            Login::Bearer(token) => {
                let pref = acct.oauth2.as_ref().map(|o| o.mechanism).unwrap_or_default();
                let caps = deadline(timeout, "CAPABILITY", pre_auth_caps(&mut client)).await?;
                let Some(mech) = sasl::choose(pref, |c| caps.contains(c)) else {
                    return Err(ImapError::Unsupported("AUTH=OAUTHBEARER or AUTH=XOAUTH2"));
                };
                let mut bearer = sasl::Bearer::new(mech, &acct.user, acct.host.trim_matches(['[', ']']), acct.port, token);
                let r = deadline(timeout, "AUTHENTICATE", async {
                    client
                        .authenticate(mech, &mut bearer)
                        .await
                        .map_err(|(e, _)| e)
                        .map_err(ImapError::from)
                })
                .await;
                match r {
                    Ok(s) => s,
                    Err(ImapError::Client(e)) => return Err(refused(e, bearer.error.take())),
                    Err(e) => return Err(e),
                }
            }
        };
        let mut conn = Conn {
            session,
            caps: BTreeSet::new(),
            timeout,
            selected: None,
            signals: Default::default(),
            exists: None,
            utf8: false,
            namespace: None,
            aliases: Default::default(),
        };
        conn.refresh_capabilities().await?;
        conn.enable_utf8().await?;
        Ok(conn)
    }

    /// Re-reads CAPABILITY (it changes after login).
    pub async fn refresh_capabilities(&mut self) -> Result<()> {
        let caps = deadline(self.timeout, "CAPABILITY", async { Ok(self.session.capabilities().await?) }).await?;
        self.caps = caps.iter().map(cap_name).collect();
        Ok(())
    }

    /// Whether the server advertised `cap` (case-insensitive).
    pub fn has(&self, cap: &str) -> bool {
        self.caps.contains(&cap.to_ascii_uppercase())
    }

    /// Whether moving mail out of a folder here needs a plain EXPUNGE
    /// (neither MOVE nor UIDPLUS), so that a move waits while other mail
    /// there is marked `\Deleted` ([`Conn::move_uid`]).
    pub fn moves_guarded(&self) -> bool {
        !self.has("MOVE") && !self.has("UIDPLUS")
    }

    /// The advertised capabilities.
    pub fn capabilities(&self) -> impl Iterator<Item = &str> {
        self.caps.iter().map(String::as_str)
    }

    /// Polite LOGOUT; errors are irrelevant at this point.
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

async fn tls_wrap(tcp: TcpStream, acct: &AccountConfig, timeout: Duration, max_literal: u64) -> Result<ImapStream> {
    let cfg = tls::client_config(tls::Trust {
        ca_file: acct.ca_file.as_deref(),
        fingerprint: acct.tls_fingerprint.as_deref(),
        skip_verify: acct.tls_skip_verify,
    })?;
    let name = tls::server_name(&acct.host)?;
    let tls = deadline(timeout, "TLS handshake", async {
        TlsConnector::from(cfg).connect(name, tcp).await.map_err(|e| {
            ImapError::Tls(format!(
                "TLS handshake with {}:{} failed: {}",
                acct.host,
                acct.port,
                tls::handshake_error(&e)
            ))
        })
    })
    .await?;
    Ok(ImapStream::tls(tls, max_literal))
}

async fn read_greeting(client: &mut Client<ImapStream>) -> Result<()> {
    let Some(resp) = client.read_response().await? else {
        return Err(ImapError::ConnectionLost);
    };
    match resp.parsed() {
        Response::Data {
            status: Status::Ok | Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ImapError::Bye(outcome.information.as_deref().unwrap_or("").to_string())),
        other => Err(ImapError::Protocol(format!("unexpected greeting: {other:?}"))),
    }
}

/// CAPABILITY before login: the greeting may not list the SASL
/// mechanisms, and async-imap only asks for capabilities after login.
async fn pre_auth_caps(client: &mut Client<ImapStream>) -> Result<BTreeSet<String>> {
    use async_imap::imap_proto::Capability;
    use tokio::io::AsyncWriteExt;
    // async-imap keeps its tagged-command writer private before login, so
    // the line goes straight to the transport (nothing else is buffered
    // there: the greeting was read and no command is in flight), with a
    // tag of our own that the client's counter never produces.
    let io = client.get_mut();
    io.write_all(b"PCAP CAPABILITY\r\n").await?;
    io.flush().await?;
    let mut caps = BTreeSet::new();
    loop {
        let Some(resp) = client.read_response().await? else {
            return Err(ImapError::ConnectionLost);
        };
        match resp.parsed() {
            Response::Capabilities(list) => caps.extend(list.iter().map(|c| match c {
                Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
                Capability::Atom(a) => a.to_ascii_uppercase(),
            })),
            Response::Done { status: Status::Ok, .. } => return Ok(caps),
            Response::Done { outcome, .. } => {
                return Err(ImapError::Refused {
                    command: "CAPABILITY".into(),
                    detail: outcome.information.as_deref().unwrap_or("").to_string(),
                });
            }
            _ => {}
        }
    }
}

fn cap_name(c: &async_imap::types::Capability) -> String {
    use async_imap::types::Capability;
    match c {
        Capability::Imap4rev1 => "IMAP4REV1".to_string(),
        Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
        Capability::Atom(a) => a.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::types::Capability;

    #[test]
    fn capability_names_are_normalised() {
        assert_eq!(cap_name(&Capability::Imap4rev1), "IMAP4REV1");
        assert_eq!(cap_name(&Capability::Atom("move".into())), "MOVE");
        assert_eq!(cap_name(&Capability::Auth("plain".into())), "AUTH=PLAIN");
    }
}
