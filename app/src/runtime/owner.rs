//! End-user quarantine (issue 22, item 2). A mailbox owner signs in to see
//! only their own account's quarantine, either with a one-time link sent to
//! the account's digest address or by proving the account's IMAP password
//! against the server (checked once, never stored). An owner may release
//! spam and junk alone; anything that looks like phishing or malware
//! becomes a request an analyst or admin decides. Every step is audited
//! with the real actor, `owner:<account>`.

use super::{LinkError, OpError, OpResult, Runtime, RuntimeError};
use crate::digest_mail::links::LinkKey;
use crate::store::{AuditEntry, MessageFilter, MessageSummary, OpKind, OwnerLink, ReleaseRequest};
use chrono::Duration;
use lettre::message::{Mailbox, Message};

/// How long a sign-in link works.
const LINK_MINUTES: i64 = 30;

/// Tags an owner may release alone: they say "unwanted", not "dangerous".
/// Everything else (viruses, YARA, attachments, URL and intel hits,
/// spoofing, password forms, unscannable mail) needs an analyst.
const SELF_RELEASE: &[&str] = &[
    "RSPAMD_RESULT",
    "RSPAMD_REJECT",
    "RSPAMD_SPAM",
    "RSPAMD_SUSPICIOUS",
    "AI_SCORES",
    "AI_SPAM",
    "AI_SPAM_LIKELY",
    "AI_UNWANTED",
    "AI_UNWANTED_LIKELY",
    "LIST_SENDER_BLOCKED",
    "HTML_HIDDEN_TEXT",
];

/// The audit actor of a mailbox owner.
pub fn owner_actor(account: &str) -> String {
    format!("owner:{account}")
}

/// Whether an owner may release mail with these tags (comma-separated, as
/// stored) without an analyst: only when every tag is a spam or junk sign.
pub fn owner_may_release(tags: Option<&str>) -> bool {
    tags.unwrap_or("").split(',').map(|t| t.trim()).filter(|t| !t.is_empty()).all(|t| {
        let name: String = t.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        SELF_RELEASE.contains(&name.as_str())
    })
}

/// What an owner's release did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum OwnerRelease {
    /// Released (or queued) like an analyst's release.
    Released(OpResult),
    /// Filed as a request for an analyst (id), or one was open already (None).
    Requested(Option<i64>),
}

/// The sign-in mail; `None` when an address does not parse.
fn sign_in_mail(from: &str, to: &str, account: &str, body: String) -> Option<Message> {
    let from: Mailbox = format!("Postern <{from}>").parse().ok()?;
    Message::builder()
        .from(from)
        .to(to.parse().ok()?)
        .subject(format!("[Postern] Sign in to the quarantine of {account}"))
        .body(body)
        .ok()
}

impl Runtime {
    /// Sends a sign-in link to `address` for each account whose digest goes
    /// there. Returns how many were sent; the caller shows the same answer
    /// either way, so the form does not tell which addresses exist.
    pub async fn send_owner_links(&self, address: &str) -> Result<usize, RuntimeError> {
        let bg = self.background.current();
        let d = &bg.settings.digest;
        let (Some(mailer), Some(from), Some(public)) = (&bg.mailer, &d.from, &d.public_url) else {
            return Err(RuntimeError::Invalid(
                "sign-in links need mail: ask the administrator to set POSTERN_SMTP_URL, the digest sender and POSTERN_PUBLIC_URL".into(),
            ));
        };
        let wanted = address.trim().to_ascii_lowercase();
        let mut sent = 0;
        for a in self.store.accounts().await? {
            let Some(to) = a.digest_recipient().filter(|r| r.eq_ignore_ascii_case(&wanted)) else {
                continue;
            };
            let token = self.issue_owner_link(&a.name, to).await?;
            let body = format!(
                "Someone (hopefully you) asked to see the Postern quarantine of {acct}.\n\n\
                 Open this link within {LINK_MINUTES} minutes; it works once:\n{public}/my/link/{token}\n\n\
                 If you did not ask, ignore this message. Postern never asks for your password.\n",
                acct = a.name
            );
            let msg = sign_in_mail(from, to, &a.name, body);
            let result = match msg {
                Some(m) => mailer.send(m).await.map_err(|e| e.to_string()),
                None => Err(format!("bad address {to:?}")),
            };
            let (event, detail) = match &result {
                Ok(()) => ("owner_link_sent", format!("sign-in link sent to {to}")),
                Err(e) => ("owner_link_failed", format!("to {to}: {e}")),
            };
            self.audit_owner(&a.name, "postern:owner", event, detail).await?;
            sent += usize::from(result.is_ok());
        }
        Ok(sent)
    }

    /// Stores a sign-in link for `account` and returns its token (the path
    /// segment after `/my/link/`).
    pub async fn issue_owner_link(&self, account: &str, recipient: &str) -> Result<String, RuntimeError> {
        let expires = self.clock.now() + Duration::minutes(LINK_MINUTES);
        let link = OwnerLink {
            account: account.to_string(),
            recipient: recipient.to_string(),
            expires_at: super::maintenance::stamp(expires),
            used_at: None,
        };
        let (token, hash) = self.background.link_key.issue_owner(&link);
        self.store.add_owner_link(&hash, link).await?;
        Ok(token)
    }

    /// The account a sign-in link would open, without using it.
    pub async fn owner_link(&self, token: &str) -> Result<String, LinkError> {
        self.checked_owner_link(token).await.map(|(_, l)| l.account)
    }

    async fn checked_owner_link(&self, token: &str) -> Result<(String, OwnerLink), LinkError> {
        let (hash, token) = LinkKey::parse(token).ok_or(LinkError::Invalid)?;
        let link = self.store.owner_link(&hash).await?.ok_or(LinkError::Invalid)?;
        if !self.background.link_key.verify_owner(&token, &link) {
            return Err(LinkError::Invalid);
        }
        if link.used_at.is_some() {
            return Err(LinkError::Used);
        }
        if link.expires_at <= self.store.now() {
            return Err(LinkError::Expired);
        }
        Ok((hash, link))
    }

    /// Uses a sign-in link (once) and opens an owner session stored under
    /// `token_hash`; returns the account.
    pub async fn redeem_owner_link(&self, token: &str, token_hash: &str, csrf: &str, ip: &str) -> Result<String, LinkError> {
        let (hash, link) = self.checked_owner_link(token).await?;
        if !self.store.claim_owner_link(&hash).await? {
            return Err(LinkError::Used);
        }
        let detail = format!("signed in with a link sent to {}, from {ip}", link.recipient);
        self.open_owner_session(&link.account, "link", token_hash, csrf, detail).await?;
        Ok(link.account)
    }

    /// Proves `password` against the IMAP server of the account that logs
    /// in as `login`; on success opens an owner session under `token_hash`
    /// and returns the account. The password is used for this one login
    /// and never stored. `None`: wrong login or password (audited).
    pub async fn owner_imap_login(
        &self,
        login: &str,
        password: &str,
        token_hash: &str,
        csrf: &str,
        ip: &str,
    ) -> Result<Option<String>, RuntimeError> {
        let login = login.trim();
        let accounts = self.store.accounts().await?;
        // OAuth2 accounts have no IMAP password to prove.
        let found = accounts
            .into_iter()
            .find(|a| a.user == login && a.oauth2.is_none() && !login.is_empty());
        let timeout = self.settings.imap.command_timeout.min(std::time::Duration::from_secs(20));
        let shown: String = login.chars().filter(|c| !c.is_control()).take(64).collect();
        let Some(mut a) = found else {
            self.audit_owner_failed(&shown, format!("unknown IMAP login, from {ip}")).await?;
            return Ok(None);
        };
        a.pass = password.to_string();
        match crate::imap::Conn::connect(&a, timeout).await {
            Ok(c) => {
                c.logout().await;
                let detail = format!("signed in by proving the IMAP password, from {ip}");
                self.open_owner_session(&a.name, "imap", token_hash, csrf, detail).await?;
                Ok(Some(a.name))
            }
            Err(e) => {
                tracing::warn!(account = %a.name, %ip, error = %e, "owner IMAP sign-in failed");
                self.audit_owner_failed(&shown, format!("IMAP login refused, from {ip}")).await?;
                Ok(None)
            }
        }
    }

    async fn open_owner_session(&self, account: &str, via: &str, token_hash: &str, csrf: &str, detail: String) -> Result<(), RuntimeError> {
        let e = AuditEntry {
            actor: owner_actor(account),
            account: Some(account.to_string()),
            event: "owner_login".into(),
            detail,
            ..Default::default()
        };
        Ok(self.store.create_owner_session(token_hash, csrf, account, via, e).await?)
    }

    async fn audit_owner_failed(&self, login: &str, detail: String) -> Result<(), RuntimeError> {
        let e = AuditEntry {
            actor: format!("owner-login:{login}"),
            event: "owner_login_failed".into(),
            detail,
            ..Default::default()
        };
        Ok(self.store.audit(e).await?)
    }

    async fn audit_owner(&self, account: &str, actor: &str, event: &str, detail: String) -> Result<(), RuntimeError> {
        let e = AuditEntry {
            actor: actor.to_string(),
            account: Some(account.to_string()),
            event: event.into(),
            detail,
            ..Default::default()
        };
        Ok(self.store.audit(e).await?)
    }

    /// The account and CSRF token of a live owner session; an idle or too
    /// old one is ended instead.
    pub async fn owner_session(
        &self,
        token_hash: &str,
        idle: std::time::Duration,
        max: std::time::Duration,
    ) -> Result<Option<(String, String)>, RuntimeError> {
        let now = self.clock.now();
        let cut = |d: std::time::Duration| super::maintenance::stamp(now - chrono::Duration::from_std(d).unwrap_or_default());
        let (idle_cut, max_cut) = (cut(idle), cut(max));
        let Some(row) = self.store.owner_session(token_hash).await? else {
            return Ok(None);
        };
        if row.last_seen < idle_cut || row.created_at < max_cut {
            self.store.delete_owner_session(token_hash, &idle_cut, &max_cut).await?;
            return Ok(None);
        }
        self.store.touch_owner_session(token_hash).await?;
        Ok(Some((row.account, row.csrf)))
    }

    /// Ends an owner session (audited).
    pub async fn owner_logout(&self, token_hash: &str, account: &str) -> Result<(), RuntimeError> {
        // Empty cut-offs: no stored time sorts below "", so only this session goes.
        self.store.delete_owner_session(token_hash, "", "").await?;
        self.audit_owner(account, &owner_actor(account), "owner_logout", String::new())
            .await
    }

    /// The owner's quarantine: this account's mail in quarantine, newest first.
    pub async fn owner_quarantine(&self, account: &str, before: Option<i64>) -> Result<Vec<MessageSummary>, RuntimeError> {
        let f = MessageFilter {
            account: Some(account.to_string()),
            quarantined: true,
            before,
            limit: Some(100),
            ..Default::default()
        };
        Ok(self.store.list_messages(&f).await?)
    }

    /// The owner's release requests (open and decided), newest first.
    pub async fn owner_requests(&self, account: &str) -> Result<Vec<ReleaseRequest>, RuntimeError> {
        Ok(self.store.release_requests(Some(account), false, 50).await?)
    }

    /// An owner's release: spam and junk are released at once; anything
    /// else becomes a request for an analyst. Mail of another account is
    /// "not found", so an owner cannot even learn that an id exists.
    pub async fn owner_release(&self, account: &str, message: i64) -> Result<OwnerRelease, OpError> {
        let m = self
            .store
            .message_summary(message)
            .await?
            .filter(|m| m.account == account)
            .ok_or(OpError::NotFound)?;
        if !m.quarantined {
            return Err(OpError::NotQuarantined);
        }
        let actor = owner_actor(account);
        if owner_may_release(m.tags.as_deref()) {
            return Ok(OwnerRelease::Released(self.request_op(message, OpKind::Release, &actor).await?));
        }
        let e = AuditEntry {
            actor: actor.clone(),
            account: Some(account.to_string()),
            mailbox: Some(m.mailbox.clone()),
            message: Some(message),
            event: "release_requested".into(),
            detail: format!("needs an analyst: {}", m.tags.as_deref().unwrap_or("no tags")),
            ..Default::default()
        };
        let id = self.store.add_release_request(message, account, &actor, e).await?;
        let _ = self.events.send(crate::domain::Event::Updated { id: message });
        Ok(OwnerRelease::Requested(id))
    }

    /// Release requests for the analysts' list, open ones only when `pending_only`.
    pub async fn release_requests(&self, pending_only: bool) -> Result<Vec<ReleaseRequest>, RuntimeError> {
        Ok(self.store.release_requests(None, pending_only, 200).await?)
    }

    /// An analyst's decision on an open request: approving releases the
    /// message in the analyst's name; denying leaves it in quarantine.
    pub async fn decide_release_request(&self, id: i64, approve: bool, actor: &str) -> Result<OpResult, OpError> {
        let (event, state) = if approve {
            ("release_approved", "approved")
        } else {
            ("release_denied", "denied")
        };
        let e = AuditEntry {
            actor: actor.to_string(),
            event: event.into(),
            detail: format!("release request {id}"),
            ..Default::default()
        };
        let message = self
            .store
            .decide_release_request(id, approve, actor, e)
            .await?
            .ok_or(OpError::NotFound)?;
        if approve {
            return self.request_op(message, OpKind::Release, actor).await;
        }
        let _ = self.events.send(crate::domain::Event::Updated { id: message });
        Ok(OpResult {
            op: message,
            state,
            detail: "the message stays in quarantine".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_release_spam_and_junk_alone_but_nothing_dangerous() {
        for ok in [
            Some("RSPAMD_REJECT"),
            Some("RSPAMD_SPAM, AI_SPAM"),
            Some("LIST_SENDER_BLOCKED"),
            None,
        ] {
            assert!(owner_may_release(ok), "{ok:?}");
        }
        for bad in [
            "AV_VIRUS",
            "RSPAMD_SPAM,HTML_PASSWORD_FORM",
            "SPOOF_DISPLAY_NAME_BRAND",
            "INTEL_URL",
            "YARA_MATCH_HIGH",
            "ATT_EXECUTABLE",
            "MIME_UNPARSEABLE",
            "RSPAMD_SPAMX",
        ] {
            assert!(!owner_may_release(Some(bad)), "{bad}");
        }
    }
}
