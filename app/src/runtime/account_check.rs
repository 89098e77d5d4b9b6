//! Testing an account's IMAP settings for the dashboard: log in (password
//! or OAuth2 token), report what the server offers, and check that every
//! folder the account watches exists, before the account is saved and
//! whenever the operator asks. Failures are said in plain language with a
//! fix, never as a library's debug text.

use super::Runtime;
use crate::config::AccountConfig;
use crate::imap::{Conn, DEFAULT_MAX_LITERAL, ImapError, Login};
use std::time::Duration;

/// The longest a test may wait on any one step.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Why an account test failed (the text is for the operator).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountTestError {
    /// No stored account has this name.
    #[error("no such account")]
    NotFound,
    /// Login or a folder check failed: what happened and how to fix it.
    #[error("{0}")]
    Failed(String),
    /// The store failed.
    #[error(transparent)]
    Runtime(#[from] super::RuntimeError),
}

impl Runtime {
    /// Tests the stored account `name`.
    pub async fn test_stored_account(&self, name: &str) -> Result<String, AccountTestError> {
        let a = self
            .store
            .account(name)
            .await
            .map_err(super::RuntimeError::from)?
            .ok_or(AccountTestError::NotFound)?;
        self.test_account(&a).await
    }

    /// Logs in with `a`'s settings and checks its folders: the summary on
    /// success, a plain-language failure with a fix otherwise.
    pub async fn test_account(&self, a: &AccountConfig) -> Result<String, AccountTestError> {
        let timeout = self.settings.imap.command_timeout.min(TEST_TIMEOUT);
        let at = format!("{}:{}", a.host, a.port);
        let fail = |e: ImapError| AccountTestError::Failed(format!("login to {at} failed: {}", e.plain()));
        let mut c = match &a.oauth2 {
            None => Conn::connect(a, timeout).await.map_err(fail)?,
            // OAuth2 accounts log in with a token from the daemon's broker.
            Some(_) => match self.manager.deps().oauth.access_token(a).await {
                Ok(t) => Conn::connect_with(a, Login::Bearer(&t), timeout, DEFAULT_MAX_LITERAL)
                    .await
                    .map_err(fail)?,
                Err(e) => {
                    return Err(AccountTestError::Failed(format!(
                        "login to {at} failed: no OAuth2 token: {e}. Fix: run `postern oauth login {}` and test again",
                        a.name
                    )));
                }
            },
        };
        let caps: Vec<&str> = ["IDLE", "MOVE", "UIDPLUS", "CONDSTORE", "QRESYNC"]
            .into_iter()
            .filter(|k| c.has(k))
            .collect();
        let caps = caps.join(" ");
        let guarded = c.moves_guarded();
        let mut missing = Vec::new();
        for f in &a.folders {
            match c.mailbox_exists(f).await {
                Ok(true) => {}
                Ok(false) => missing.push(f.clone()),
                Err(e) => {
                    c.logout().await;
                    return Err(AccountTestError::Failed(format!(
                        "login to {at} OK, but checking folder {f:?} failed: {}",
                        e.plain()
                    )));
                }
            }
        }
        let known = if missing.is_empty() {
            Vec::new()
        } else {
            c.list_mailboxes().await.unwrap_or_default()
        };
        c.logout().await;
        if !missing.is_empty() {
            let mut msg = format!(
                "login to {at} OK, but the server has no folder named {}. Fix: correct the folder names (they are case-sensitive)",
                missing.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ")
            );
            let guesses: Vec<String> = missing
                .iter()
                .filter_map(|m| crate::config::closest(m, known.iter().map(String::as_str)).map(|k| format!("{m:?} → {k:?}")))
                .collect();
            if !guesses.is_empty() {
                msg.push_str(&format!("; did you mean {}?", guesses.join(", ")));
            }
            return Err(AccountTestError::Failed(msg));
        }
        let mut msg = format!("login to {at} OK; folders {} exist; server offers {caps}", a.folders.join(", "));
        if guarded {
            msg.push_str(". Note: no MOVE or UIDPLUS, so a quarantine waits while another message in the folder is marked \\Deleted");
        }
        Ok(msg)
    }

    /// Records an operator's change to an account in the audit log.
    pub async fn audit_account(&self, actor: &str, account: &str, event: &str, detail: String) -> Result<(), super::RuntimeError> {
        self.store
            .audit(crate::store::AuditEntry {
                actor: actor.into(),
                account: Some(account.into()),
                event: event.into(),
                detail,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Accounts (other than `name`) that already watch one of `a`'s
    /// folders on the same mailbox: each message would be handled twice.
    pub async fn same_mailbox_warnings(&self, a: &AccountConfig) -> Result<Vec<String>, super::RuntimeError> {
        let mut all: Vec<AccountConfig> = self.store.accounts().await?.into_iter().filter(|o| o.name != a.name).collect();
        all.push(a.clone());
        Ok(crate::config::same_mailbox(&all)
            .into_iter()
            .filter(|p| p.path == format!("accounts.{}", a.name))
            .map(|p| format!("{}: {}", a.name, p.message))
            .collect())
    }
}
