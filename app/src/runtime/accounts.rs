//! Accounts as the dashboard manages them: each stored account with where
//! it came from and its listeners, and saving, removing, starting and
//! stopping one (the store and the manager change together).

use super::{ListenerStatus, Runtime, RuntimeError};
use crate::config::AccountConfig;
use crate::store::{AccountSource, StoreError};

/// A stored account as the accounts page shows it.
#[derive(Debug, Clone)]
pub struct AccountState {
    /// Its settings (the password included: never send it to a client).
    pub config: AccountConfig,
    /// `config` (config.yaml) or `web` (the dashboard); empty if unknown.
    pub source: String,
    /// Listeners started.
    pub running: bool,
    /// Its folders' listeners.
    pub listeners: Vec<ListenerStatus>,
}

/// Why an account could not be removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountRemoveError {
    /// No such account.
    #[error("no such account")]
    NotFound,
    /// config.yaml defines it, so only config.yaml can remove it.
    #[error("the account is defined in config.yaml")]
    FromConfig,
    /// Store failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl Runtime {
    /// Every stored account with its source and listeners.
    pub async fn account_states(&self) -> Result<Vec<AccountState>, StoreError> {
        let running = self.manager.accounts();
        let status = self.manager.status();
        let mut out = Vec::new();
        for a in self.store.accounts().await? {
            let source = self.store.account_source(&a.name).await?.map(|s| s.source).unwrap_or_default();
            out.push(AccountState {
                running: running.contains(&a.name),
                listeners: status.iter().filter(|s| s.account == a.name).cloned().collect(),
                source,
                config: a,
            });
        }
        Ok(out)
    }

    /// Where an account is defined and whether it is active.
    pub async fn account_source(&self, name: &str) -> Result<Option<AccountSource>, StoreError> {
        self.store.account_source(name).await
    }

    /// A stored account's settings.
    pub async fn account(&self, name: &str) -> Result<Option<AccountConfig>, StoreError> {
        self.store.account(name).await
    }

    /// Stores a dashboard account, audits it and (re)starts its listeners.
    pub async fn save_account(&self, cfg: AccountConfig, editing: bool, actor: &str) -> Result<(), RuntimeError> {
        self.store.upsert_account(&cfg, "web").await?;
        self.audit_account(
            actor,
            &cfg.name,
            if editing { "account_updated" } else { "account_created" },
            format!(
                "{}@{}:{} folders {:?} mode {:?}",
                cfg.user, cfg.host, cfg.port, cfg.folders, cfg.mode
            ),
        )
        .await?;
        self.manager.start_account(cfg).await;
        Ok(())
    }

    /// Stops a dashboard account and disables it (audited by the store).
    pub async fn remove_account(&self, name: &str, actor: &str) -> Result<(), AccountRemoveError> {
        match self.store.account_source(name).await.map_err(RuntimeError::from)? {
            None => return Err(AccountRemoveError::NotFound),
            Some(s) if s.source == "config" => return Err(AccountRemoveError::FromConfig),
            _ => {}
        }
        self.manager.stop_account(name).await;
        self.store.disable_account(name, actor).await.map_err(RuntimeError::from)?;
        Ok(())
    }

    /// Starts or stops an account's listeners (audited); false when there
    /// is no such account.
    pub async fn set_account_running(&self, name: &str, run: bool, actor: &str) -> Result<bool, RuntimeError> {
        let Some(a) = self.store.account(name).await? else {
            return Ok(false);
        };
        if run {
            self.manager.start_account(a).await;
        } else {
            self.manager.stop_account(name).await;
        }
        self.audit_account(actor, name, if run { "account_started" } else { "account_stopped" }, String::new())
            .await?;
        Ok(true)
    }
}
