//! Configuration: global settings from `POSTERN_*` environment variables and
//! IMAP accounts from `config.yaml`.
//!
//! Loading happens in two steps (as in ripgrep): raw input is read leniently,
//! then validated into typed values. Validation never stops at the first
//! problem; every problem is collected with its field path and a fix hint so
//! an operator can repair a config in one pass.

mod accounts;
mod background;
mod env;
mod intel;
mod logwatch;
mod milter;
mod oauth;
mod problem;
mod secret;
mod suggest;
mod warnings;

pub use accounts::{
    AccountConfig, BootstrapConfig, DEFAULT_FLAG_KEYWORD, DigestFrequency, JunkFolder, PolicyConfig, StartAt, TlsMode, is_keyword,
    parse_account_value, parse_accounts,
};
pub use background::{BackgroundSettings, DigestSettings, MaintenanceSettings, NotifySettings};
pub use env::{AiSettings, ImapTuning, LogFormat, ScanSettings, Settings, WebSettings, parse_settings};
pub use intel::{FEEDS, IntelSettings};
pub use logwatch::{LOGWATCH_KEYS, LogwatchSettings};
pub use milter::{MilterListen, MilterReply, MilterSettings, POSTFIX_CONTENT_TIMEOUT};
pub use oauth::{ClientAuth, GOOGLE_SCOPE, GOOGLE_TOKEN_URL, M365_APP_SCOPE, M365_USER_SCOPE, OAuthConfig, OAuthFlow, SaslMechanism};
pub use problem::{ConfigError, Problem};
pub use secret::{decode_key, looks_like_placeholder};
pub use suggest::closest;
pub use warnings::{same_mailbox, unknown_vars};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything Postern needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Global settings (environment).
    pub settings: Settings,
    /// Accounts declared in config.yaml.
    pub accounts: Vec<AccountConfig>,
    /// Built-in decision policy from config.yaml.
    pub policy: PolicyConfig,
    /// Where the accounts file was read from.
    pub config_path: PathBuf,
}

impl Config {
    /// Reads the process environment and the config file it names.
    pub fn from_process_env() -> Result<Config, ConfigError> {
        Self::load(&Self::process_vars())
    }

    /// The process's `POSTERN_*` variables, as [`Config::load`] reads them.
    pub fn process_vars() -> BTreeMap<String, String> {
        std::env::vars().filter(|(k, _)| k.starts_with("POSTERN_")).collect()
    }

    /// What is valid but probably not meant (see [`warnings::warnings`]).
    pub fn warnings(&self, vars: &BTreeMap<String, String>) -> Vec<Problem> {
        warnings::warnings(self, vars)
    }

    /// Validates settings from `vars` and the accounts file they point to,
    /// reporting every problem of both at once.
    pub fn load(vars: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut settings = parse_settings(vars, &mut problems);
        let config_path = settings.config_path.clone();
        let (accounts, policy) = match std::fs::read_to_string(&config_path) {
            Ok(text) => {
                let file = logwatch::from_yaml(&text, &mut problems);
                settings.logwatch = logwatch::parse(
                    &mut env::Reader {
                        vars,
                        problems: &mut problems,
                    },
                    file,
                );
                parse_accounts(&text, base_dir(&config_path), &mut problems)
            }
            Err(e) => {
                problems.push(Problem::new(
                    "POSTERN_CONFIG",
                    format!("cannot read {}: {e}", config_path.display()),
                    "point POSTERN_CONFIG at your config.yaml (see packaging/config/config.yaml)",
                ));
                (Vec::new(), PolicyConfig::default())
            }
        };
        if problems.is_empty() {
            Ok(Config {
                settings,
                accounts,
                policy,
                config_path,
            })
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

fn base_dir(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}
