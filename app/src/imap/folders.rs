//! Folder names on a real server: encoding, the personal namespace, and
//! finding or creating the folders Postern moves mail into.
//!
//! A configured name that exists as given is used as is. Otherwise it is
//! placed under the personal namespace (`Quarantine` becomes
//! `INBOX.Quarantine` on Cyrus and Courier), which is where the server lets
//! the user create folders.

use super::conn::{Conn, deadline};
use super::names::{self, ArgRules, Namespace};
use super::{ImapError, Result};
use futures::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest NAMESPACE reply read (a real one is under 200 bytes).
const NAMESPACE_MAX: usize = 16 * 1024;

/// Tag of Postern's own NAMESPACE exchange; async-imap's tags are `A…`.
const NAMESPACE_TAG: &str = "PNS1";

impl Conn {
    /// How arguments may travel on this connection.
    pub(crate) fn arg_rules(&self) -> ArgRules {
        ArgRules {
            utf8: self.utf8,
            literal_plus: self.has("LITERAL+"),
            literal_minus: self.has("LITERAL-"),
        }
    }

    /// One command argument, quoted or as a literal ([`names::astring`]).
    pub fn astring(&self, s: &str) -> Result<String> {
        names::astring(s, self.arg_rules()).map_err(|e| ImapError::Argument(e.to_string()))
    }

    /// A mailbox name as sent: modified UTF-7 unless UTF8=ACCEPT is on.
    pub(crate) fn wire_name(&self, name: &str) -> String {
        if self.utf8 { name.to_string() } else { names::encode_mutf7(name) }
    }

    /// A mailbox name from the server, decoded for display and config
    /// matching; a malformed one is kept as sent.
    pub(crate) fn display_name(&self, wire: &str) -> String {
        if self.utf8 {
            return wire.to_string();
        }
        names::decode_mutf7(wire).unwrap_or_else(|| wire.to_string())
    }

    /// The personal namespace (asked once per connection, when a folder
    /// is first looked up).
    pub async fn namespace(&mut self) -> Result<Namespace> {
        if let Some(ns) = &self.namespace {
            return Ok(ns.clone());
        }
        let ns = self.discover_namespace().await?;
        self.namespace = Some(ns.clone());
        Ok(ns)
    }

    /// The server's name for a configured folder, once resolved on this
    /// connection ([`Conn::ensure_mailbox`]); else the name itself.
    pub fn resolved<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(name).map_or(name, String::as_str)
    }

    /// After login, before any mailbox name is sent: UTF8=ACCEPT when
    /// offered (names then travel as UTF-8, RFC 6855).
    pub(super) async fn enable_utf8(&mut self) -> Result<()> {
        if self.has("UTF8=ACCEPT") {
            let t = self.timeout;
            let ok = deadline(t, "ENABLE", async {
                Ok(self.session.run_command_and_check_ok("ENABLE UTF8=ACCEPT").await.is_ok())
            })
            .await?;
            self.utf8 = ok;
        }
        Ok(())
    }

    async fn discover_namespace(&mut self) -> Result<Namespace> {
        if self.has("NAMESPACE") {
            let t = self.timeout;
            let line = deadline(t, "NAMESPACE", self.raw_namespace()).await?;
            if let Some(Some(mut ns)) = line.as_deref().and_then(names::parse_namespace) {
                ns.prefix = self.display_name(&ns.prefix);
                return Ok(ns);
            }
        }
        // No NAMESPACE: the root, with the delimiter from `LIST "" ""`.
        let t = self.timeout;
        let delimiter = deadline(t, "LIST", async {
            let names: Vec<_> = self.session.list(Some(""), Some("\"\"")).await?.try_collect().await?;
            Ok(names.first().and_then(|n| n.delimiter()).and_then(|d| d.chars().next()))
        })
        .await?;
        Ok(Namespace {
            prefix: String::new(),
            delimiter,
        })
    }

    /// async-imap cannot parse a NAMESPACE reply (the parse error would
    /// leave it stuck on the line), so this one exchange is done on the
    /// stream directly, right after login when nothing else is in flight.
    /// Reads byte by byte so nothing after the tagged reply is taken.
    async fn raw_namespace(&mut self) -> Result<Option<String>> {
        let stream = self.session.get_mut();
        stream.write_all(format!("{NAMESPACE_TAG} NAMESPACE\r\n").as_bytes()).await?;
        stream.flush().await?;
        let mut found = None;
        let mut line = Vec::new();
        let mut total = 0usize;
        loop {
            let b = stream.read_u8().await?;
            total += 1;
            if total > NAMESPACE_MAX {
                return Err(ImapError::Protocol("NAMESPACE reply too long".into()));
            }
            line.push(b);
            if !line.ends_with(b"\r\n") {
                continue;
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            line.clear();
            if text.starts_with("* ") && text[2..].to_ascii_uppercase().starts_with("NAMESPACE ") {
                found = Some(text);
            } else if let Some(rest) = text.strip_prefix(NAMESPACE_TAG).and_then(|r| r.strip_prefix(' ')) {
                // NO/BAD: the server has no usable NAMESPACE after all.
                return Ok(found.filter(|_| rest.to_ascii_uppercase().starts_with("OK")));
            }
        }
    }

    /// Whether a mailbox with exactly this (display) name exists.
    pub async fn mailbox_exists(&mut self, name: &str) -> Result<bool> {
        let pattern = self.astring(&self.wire_name(name))?;
        let t = self.timeout;
        let wire: Vec<String> = deadline(t, "LIST", async {
            let names: Vec<_> = self.session.list(Some(""), Some(&pattern)).await?.try_collect().await?;
            Ok(names.iter().map(|n| n.name().to_string()).collect())
        })
        .await?;
        Ok(wire
            .iter()
            .any(|w| self.display_name(w) == name || (name.eq_ignore_ascii_case("INBOX") && w.eq_ignore_ascii_case("INBOX"))))
    }

    /// Where a configured folder lives or would be created: the name as
    /// given, or under the personal namespace.
    async fn in_namespace(&mut self, name: &str) -> Result<Option<String>> {
        let ns = self.namespace().await?;
        let p = &ns.prefix;
        let upper = name.to_ascii_uppercase();
        if p.is_empty() || upper == "INBOX" || upper.starts_with(&p.to_ascii_uppercase()) {
            return Ok(None);
        }
        Ok(Some(format!("{p}{name}")))
    }

    /// Finds `name` on the server (as given, then under the personal
    /// namespace) and remembers the answer for this connection.
    pub(crate) async fn find_mailbox(&mut self, name: &str) -> Result<Option<String>> {
        if let Some(found) = self.aliases.get(name) {
            return Ok(Some(found.clone()));
        }
        let mut candidates = vec![name.to_string()];
        candidates.extend(self.in_namespace(name).await?);
        for c in candidates {
            if self.mailbox_exists(&c).await? {
                self.aliases.insert(name.to_string(), c.clone());
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Creates `name` unless it exists (as given or under the personal
    /// namespace). Returns true when it was created. A folder that cannot
    /// be created is [`ImapError::FolderUnavailable`].
    pub async fn ensure_mailbox(&mut self, name: &str) -> Result<bool> {
        if self.find_mailbox(name).await?.is_some() {
            return Ok(false);
        }
        let target = self.in_namespace(name).await?.unwrap_or_else(|| name.to_string());
        let arg = self.astring(&self.wire_name(&target))?;
        let created = match self.tagged(&format!("CREATE {arg}"), 0).await {
            Ok(_) => true,
            Err(ImapError::Refused { detail, .. }) => {
                // Another connection may have created it meanwhile; not
                // every server sends [ALREADYEXISTS] (RFC 5530) with it.
                let exists_text =
                    detail.to_ascii_uppercase().contains("ALREADYEXISTS") || detail.to_ascii_lowercase().contains("already exist");
                if !(exists_text || self.mailbox_exists(&target).await?) {
                    return Err(self.unavailable(name, &target, &detail).await);
                }
                false
            }
            Err(e) => return Err(e),
        };
        self.aliases.insert(name.to_string(), target);
        Ok(created)
    }

    async fn unavailable(&mut self, name: &str, target: &str, detail: &str) -> ImapError {
        let ns = self.namespace().await.map(|n| n.prefix).unwrap_or_default();
        let hint = if ns.is_empty() {
            String::new()
        } else {
            format!(" (personal namespace {ns:?})")
        };
        ImapError::FolderUnavailable {
            folder: name.to_string(),
            detail: format!("CREATE {target:?} refused{hint}: {detail}"),
        }
    }
}

/// What `check-config` found for one folder: a watched one, or one
/// Postern moves mail into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderCheck {
    /// The configured name.
    pub folder: String,
    /// A folder Postern watches (it must exist; it is never created), not
    /// one it moves mail into.
    pub watched: bool,
    /// The server's name and whether it was just created, or why it is
    /// missing or cannot be created.
    pub outcome: std::result::Result<(String, bool), String>,
}

/// Most of the server's folder names quoted when a watched one is missing.
const LISTED: usize = 12;

/// Logs in, finds every watched folder, and (in enforce mode) makes sure
/// the quarantine and hold folders exist, creating them as the running
/// service would. A connection failure is an error; a watched folder that
/// is not there, or a folder that cannot be created, is a [`FolderCheck`]
/// with `Err`. Without this a typo in `folders` passed the check and only
/// showed as a broken folder once the service ran.
pub async fn check_folders(acct: &crate::config::AccountConfig, timeout: std::time::Duration) -> Result<Vec<FolderCheck>> {
    let mut c = Conn::connect(acct, timeout).await?;
    let mut out = Vec::new();
    for folder in &acct.folders {
        let outcome = match c.find_mailbox(folder).await? {
            Some(name) => Ok((name, false)),
            None => {
                let known = match c.list_mailboxes().await {
                    Ok(names) => {
                        let mut shown: Vec<String> = names.iter().take(LISTED).map(|n| format!("{n:?}")).collect();
                        if names.len() > LISTED {
                            shown.push(format!("and {} more", names.len() - LISTED));
                        }
                        format!("its folders: {}", shown.join(", "))
                    }
                    Err(e) => format!("its folder list could not be read: {e}"),
                };
                Err(format!("watched folder {folder:?} does not exist on the server ({known})"))
            }
        };
        out.push(FolderCheck {
            folder: folder.clone(),
            watched: true,
            outcome,
        });
    }
    if acct.mode == crate::domain::Mode::Enforce {
        for folder in [&acct.quarantine_folder, &acct.hold_folder] {
            let outcome = match c.ensure_mailbox(folder).await {
                Ok(created) => Ok((c.resolved(folder).to_string(), created)),
                Err(e @ ImapError::FolderUnavailable { .. }) => Err(e.to_string()),
                Err(e) => return Err(e),
            };
            out.push(FolderCheck {
                folder: folder.clone(),
                watched: false,
                outcome,
            });
        }
    }
    c.logout().await;
    Ok(out)
}
