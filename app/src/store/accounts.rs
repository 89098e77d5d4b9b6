//! Accounts table. Passwords are sealed with the store's [`SecretBox`], bound
//! to the account name.

use super::{Result, Store, StoreError};
use crate::config::AccountConfig;
use rusqlite::params;

#[derive(serde::Serialize, serde::Deserialize)]
struct Settings {
    tls_skip_verify: bool,
    ca_file: Option<std::path::PathBuf>,
    #[serde(default)]
    tls_fingerprint: Option<String>,
    folders: Vec<String>,
    quarantine_folder: String,
    hold_folder: String,
    mode: crate::domain::Mode,
    start_at: crate::config::StartAt,
    #[serde(default)]
    digest: crate::config::DigestFrequency,
    #[serde(default)]
    digest_to: Option<String>,
    /// The account's `oauth2:` block as JSON, sealed: it holds client
    /// secrets and private keys.
    #[serde(default)]
    oauth2_enc: Option<String>,
    #[serde(default)]
    junk_folder: crate::config::JunkFolder,
    #[serde(default)]
    flag_keyword: Option<String>,
    #[serde(default)]
    learn_from_folders: bool,
    #[serde(default)]
    learn_bootstrap: Option<crate::config::BootstrapConfig>,
    report_folder: Option<String>,
}

fn context(name: &str) -> String {
    format!("account:{name}:pass")
}

fn oauth_context(name: &str) -> String {
    format!("account:{name}:oauth2")
}

impl Store {
    /// Inserts or updates an account (password encrypted).
    pub async fn upsert_account(&self, a: &AccountConfig, source: &str) -> Result<()> {
        let a = a.clone();
        let source = source.to_string();
        self.call(move |c, ctx| {
            let settings = serde_json::to_string(&Settings {
                tls_skip_verify: a.tls_skip_verify,
                ca_file: a.ca_file.clone(),
                tls_fingerprint: a.tls_fingerprint.clone(),
                folders: a.folders.clone(),
                quarantine_folder: a.quarantine_folder.clone(),
                hold_folder: a.hold_folder.clone(),
                mode: a.mode,
                start_at: a.start_at,
                digest: a.digest,
                digest_to: a.digest_to.clone(),
                oauth2_enc: match &a.oauth2 {
                    Some(o) => Some(ctx.secrets.seal(
                        &serde_json::to_string(o).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        &oauth_context(&a.name),
                    )),
                    None => None,
                },
                junk_folder: a.junk_folder.clone(),
                flag_keyword: a.flag_keyword.clone(),
                learn_from_folders: a.learn_from_folders,
                learn_bootstrap: a.learn_bootstrap,
                report_folder: a.report_folder.clone(),
            })
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let tls = serde_json::to_value(a.tls)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            c.execute(
                "INSERT INTO accounts (name, host, port, tls, user, pass_enc, settings_json, source, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                 ON CONFLICT(name) DO UPDATE SET host=?2, port=?3, tls=?4, user=?5, pass_enc=?6,
                   settings_json=?7, source=?8, enabled=1, updated_at=?9",
                params![
                    a.name,
                    a.host,
                    a.port,
                    tls,
                    a.user,
                    ctx.secrets.seal(&a.pass, &context(&a.name)),
                    settings,
                    source,
                    ctx.now
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// All enabled accounts, passwords decrypted.
    pub async fn accounts(&self) -> Result<Vec<AccountConfig>> {
        self.call(|c, ctx| {
            let mut st =
                c.prepare("SELECT name, host, port, tls, user, pass_enc, settings_json FROM accounts WHERE enabled = 1 ORDER BY name")?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u16>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (name, host, port, tls, user, pass_enc, settings) = row?;
                let s: Settings = serde_json::from_str(&settings).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let tls = serde_json::from_value(serde_json::Value::String(tls)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let pass = ctx.secrets.open(&pass_enc, &context(&name))?;
                let oauth2 = match &s.oauth2_enc {
                    Some(enc) => Some(
                        serde_json::from_str(&ctx.secrets.open(enc, &oauth_context(&name))?)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    ),
                    None => None,
                };
                out.push(AccountConfig {
                    name,
                    host,
                    port,
                    tls,
                    tls_skip_verify: s.tls_skip_verify,
                    ca_file: s.ca_file,
                    tls_fingerprint: s.tls_fingerprint,
                    user,
                    pass,
                    oauth2,
                    folders: s.folders,
                    quarantine_folder: s.quarantine_folder,
                    hold_folder: s.hold_folder,
                    mode: s.mode,
                    start_at: s.start_at,
                    digest: s.digest,
                    digest_to: s.digest_to,
                    junk_folder: s.junk_folder,
                    flag_keyword: s.flag_keyword,
                    learn_from_folders: s.learn_from_folders,
                    learn_bootstrap: s.learn_bootstrap,
                    report_folder: s.report_folder,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Makes the accounts table match config.yaml for config-sourced rows:
    /// upserts every configured account and disables config rows that were
    /// removed from the file (their history stays).
    pub async fn sync_config_accounts(&self, accounts: &[AccountConfig]) -> Result<()> {
        for a in accounts {
            self.upsert_account(a, "config").await?;
        }
        let names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            tx.execute("UPDATE accounts SET enabled = 1 WHERE source = 'config'", [])?;
            let mut st = tx.prepare("SELECT name FROM accounts WHERE source = 'config'")?;
            let existing: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            drop(st);
            for n in existing.iter().filter(|n| !names.contains(n)) {
                tx.execute(
                    "UPDATE accounts SET enabled = 0, updated_at = ?2 WHERE name = ?1",
                    params![n, ctx.now],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

/// Where an account row came from and whether it is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSource {
    /// `config` (config.yaml) or `web` (the dashboard).
    pub source: String,
    /// Active.
    pub enabled: bool,
}

impl Store {
    /// One enabled account, password decrypted.
    pub async fn account(&self, name: &str) -> Result<Option<AccountConfig>> {
        Ok(self.accounts().await?.into_iter().find(|a| a.name == name))
    }

    /// Source and state of an account row, if the name is known.
    pub async fn account_source(&self, name: &str) -> Result<Option<AccountSource>> {
        let n = name.to_string();
        self.call(move |c, _| {
            use rusqlite::OptionalExtension;
            Ok(
                c.query_row("SELECT source, enabled FROM accounts WHERE name = ?1", params![n], |r| {
                    Ok(AccountSource {
                        source: r.get(0)?,
                        enabled: r.get(1)?,
                    })
                })
                .optional()?,
            )
        })
        .await
    }

    /// Disables an account (its messages and audit history stay), with an audit row.
    pub async fn disable_account(&self, name: &str, actor: &str) -> Result<bool> {
        let (n, a) = (name.to_string(), actor.to_string());
        self.call(move |c, ctx| {
            let tx = c.transaction()?;
            let changed = tx.execute(
                "UPDATE accounts SET enabled = 0, updated_at = ?2 WHERE name = ?1 AND enabled = 1",
                params![n, ctx.now],
            )?;
            if changed > 0 {
                super::audit::insert(
                    &tx,
                    &ctx.now,
                    &super::AuditEntry {
                        actor: a,
                        account: Some(n.clone()),
                        event: "account_removed".into(),
                        detail: format!("account {n} removed"),
                        ..Default::default()
                    },
                )?;
            }
            tx.commit()?;
            Ok(changed > 0)
        })
        .await
    }
}
