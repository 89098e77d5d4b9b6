//! Quarantine digests at run time: who gets one and when, the links they
//! carry, and what a click on a link may do. A link is honoured once,
//! before it expires, and only while the message is still in quarantine
//! with the content the link was issued for.

use super::{OpError, OpResult, Runtime, RuntimeError};
use crate::config::AccountConfig;
use crate::digest_mail::{self, Item, links::LinkKey};
use crate::store::{AuditEntry, DigestLink, MessageSummary, OpKind};
use chrono::Duration;

/// Most messages listed in one digest.
const MAX_ITEMS: u32 = 200;

/// Why a digest link was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Not a link Postern issued.
    #[error("this link is not valid")]
    Invalid,
    /// Used before.
    #[error("this link has already been used")]
    Used,
    /// Past its expiry.
    #[error("this link has expired")]
    Expired,
    /// The message is no longer what the link was issued for.
    #[error("{0}")]
    Stale(String),
    /// The action failed.
    #[error(transparent)]
    Op(#[from] OpError),
}

impl From<RuntimeError> for LinkError {
    fn from(e: RuntimeError) -> Self {
        Self::Op(OpError::Runtime(e))
    }
}

impl From<crate::store::StoreError> for LinkError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Op(e.into())
    }
}

impl Runtime {
    /// Sends `a`'s digest of mail quarantined since `since`; returns how
    /// many messages it listed (none: nothing is sent).
    pub async fn send_digest(&self, a: &AccountConfig, since: &str) -> Result<usize, RuntimeError> {
        let bg = self.background.current();
        let d = &bg.settings.digest;
        let (Some(mailer), Some(from), Some(public)) = (&bg.mailer, &d.from, &d.public_url) else {
            return Ok(0);
        };
        let Some(to) = a.digest_recipient() else {
            tracing::warn!(account = %a.name, "digest enabled but no recipient (set digest_to)");
            return Ok(0);
        };
        let rows = self.store.digest_items(&a.name, since, MAX_ITEMS).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let expires = now + Duration::hours(i64::from(d.link_hours));
        let expires_at = super::maintenance::stamp(expires);
        let mut items = Vec::with_capacity(rows.len());
        for (m, sha256) in rows {
            let release = self.issue_digest_link(m.id, &sha256, "release", to, &expires_at).await?;
            let delete = self.issue_digest_link(m.id, &sha256, "delete", to, &expires_at).await?;
            items.push(Item {
                m,
                release_url: format!("{public}/digest/{release}"),
                delete_url: format!("{public}/digest/{delete}"),
            });
        }
        let period = match a.digest {
            crate::config::DigestFrequency::Weekly => "this week",
            _ => "since the last digest",
        };
        let when = expires.format("%Y-%m-%d %H:%M UTC").to_string();
        let n = items.len();
        let sent = match digest_mail::compose(from, to, &a.name, period, &when, &items) {
            Ok(msg) => mailer.send(msg).await,
            Err(e) => Err(e),
        };
        let (event, detail) = match &sent {
            Ok(()) => ("digest_sent", format!("{n} message(s) listed, sent to {to}")),
            Err(e) => ("digest_failed", format!("to {to}: {e}")),
        };
        self.store
            .audit(AuditEntry {
                actor: "postern:digest".into(),
                account: Some(a.name.clone()),
                event: event.into(),
                detail: detail.clone(),
                ..Default::default()
            })
            .await?;
        match sent {
            Ok(()) => {
                self.background.digests_sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(account = %a.name, n, %to, "digest sent");
                Ok(n)
            }
            Err(e) => {
                tracing::warn!(account = %a.name, error = %e, "digest not sent");
                Err(RuntimeError::Invalid(detail))
            }
        }
    }

    /// Stores a link for `message` with content `sha256` and returns its
    /// token (the URL path segment after `/digest/`).
    pub async fn issue_digest_link(
        &self,
        message: i64,
        sha256: &str,
        action: &str,
        recipient: &str,
        expires_at: &str,
    ) -> Result<String, RuntimeError> {
        let link = DigestLink {
            message,
            sha256: sha256.to_string(),
            action: action.to_string(),
            recipient: recipient.to_string(),
            expires_at: expires_at.to_string(),
            used_at: None,
        };
        let (token, hash) = self.background.link_key.issue(&link);
        self.store.add_digest_link(&hash, link).await?;
        Ok(token)
    }

    /// What a link would do, without using it (the confirmation page).
    pub async fn digest_link(&self, token: &str) -> Result<(DigestLink, MessageSummary), LinkError> {
        self.checked_link(token).await.map(|(_, link, m)| (link, m))
    }

    /// Every check a link must pass; also returns the nonce hash it is stored under.
    async fn checked_link(&self, token: &str) -> Result<(String, DigestLink, MessageSummary), LinkError> {
        let (hash, token) = LinkKey::parse(token).ok_or(LinkError::Invalid)?;
        let link = self.store.digest_link(&hash).await?.ok_or(LinkError::Invalid)?;
        if !self.background.link_key.verify(&token, &link) {
            return Err(LinkError::Invalid);
        }
        if link.used_at.is_some() {
            return Err(LinkError::Used);
        }
        if link.expires_at <= self.store.now() {
            return Err(LinkError::Expired);
        }
        let m = self.still_quarantined(&link).await?;
        Ok((hash, link, m))
    }

    /// Uses a link: at most once, and only for the message it was issued for.
    pub async fn redeem_digest_link(&self, token: &str) -> Result<OpResult, LinkError> {
        let (hash, link, _) = self.checked_link(token).await?;
        // Checked just now; the claim settles a race with a second click.
        if !self.store.claim_digest_link(&hash).await? {
            return Err(LinkError::Used);
        }
        let kind = if link.action == "delete" { OpKind::Delete } else { OpKind::Release };
        Ok(self.request_op(link.message, kind, &format!("digest:{}", link.recipient)).await?)
    }

    async fn still_quarantined(&self, link: &DigestLink) -> Result<MessageSummary, LinkError> {
        let m = self
            .store
            .message_summary(link.message)
            .await?
            .ok_or_else(|| LinkError::Stale("the message no longer exists".into()))?;
        let sha = self.store.message_sha(link.message).await?;
        if sha.as_deref() != Some(link.sha256.as_str()) {
            return Err(LinkError::Stale("the stored message does not match this link".into()));
        }
        if !m.quarantined {
            let what = m.disposition.as_deref().unwrap_or("moved");
            return Err(LinkError::Stale(format!("the message is no longer in quarantine ({what})")));
        }
        Ok(m)
    }
}
