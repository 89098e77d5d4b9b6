//! Issue 22, item 3: every key and rule in the dashboard, in force at once.
//!
//! Precedence, for each setting on its own: a value set in the dashboard
//! wins; else the environment's (`POSTERN_*`, from the process or the env
//! file); else the built-in default. config.yaml carries accounts, lists
//! and policy, none of these. Clearing a dashboard value falls back to the
//! environment's. Secrets are sealed in SQLite and only their presence and
//! source are ever shown.

use super::background::SmtpCredentials;
use super::intel::IntelKeys;
use super::{Overrides, Runtime, RuntimeError};
use crate::config::{BackgroundSettings, FEEDS, Settings};
use crate::domain::Verdict;
use crate::store::Store;
use chrono::NaiveTime;

/// One secret the dashboard manages.
#[derive(Debug, Clone, Copy)]
pub struct SecretSpec {
    /// Stored-setting key (also the API path segment).
    pub key: &'static str,
    /// What the page calls it.
    pub label: &'static str,
    /// The environment variable that can also supply it.
    pub env: &'static str,
}

const fn spec(key: &'static str, label: &'static str, env: &'static str) -> SecretSpec {
    SecretSpec { key, label, env }
}

/// Every secret the dashboard can set.
pub const SECRETS: &[SecretSpec] = &[
    spec(super::RSPAMD_PASSWORD_KEY, "Rspamd controller password", "POSTERN_RSPAMD_PASSWORD"),
    spec("virustotal_key", "VirusTotal API key", "POSTERN_VIRUSTOTAL_KEY"),
    spec("abuseipdb_key", "AbuseIPDB API key", "POSTERN_ABUSEIPDB_KEY"),
    spec("phishtank_key", "PhishTank application key", "POSTERN_PHISHTANK_KEY"),
    spec("abusech_key", "abuse.ch Auth-Key", "POSTERN_ABUSECH_AUTH_KEY"),
    spec("ntfy_token", "ntfy access token", "POSTERN_NTFY_TOKEN"),
    spec("webhook_secret", "Webhook signing secret", "POSTERN_WEBHOOK_SECRET"),
    spec("smtp_username", "SMTP user (digests)", "POSTERN_SMTP_URL"),
    spec("smtp_password", "SMTP password (digests)", "POSTERN_SMTP_URL"),
];

/// Where a secret in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// Set in the dashboard (sealed in the database).
    Dashboard,
    /// From a `POSTERN_*` variable.
    Environment,
    /// Not set anywhere.
    Unset,
}

/// What the page and API may know about a secret: never its value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SecretStatus {
    /// Key.
    pub key: &'static str,
    /// Label.
    pub label: &'static str,
    /// The environment variable that can supply it.
    pub env: &'static str,
    /// Whether a value is in force.
    pub set: bool,
    /// Where the value in force comes from.
    pub source: SecretSource,
    /// The environment has one too (shadowed while the dashboard's is set).
    pub env_set: bool,
}

/// Undoes a URL's percent-encoding (user information may hide `@` or `:`).
fn decode(v: &str) -> String {
    percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned()
}

/// A secret's value in the environment (SMTP credentials come from the
/// URL's user information).
fn env_secret(s: &Settings, key: &str) -> Option<String> {
    let smtp = || s.background.digest.smtp_url.as_deref().and_then(|u| url::Url::parse(u).ok());
    let v = match key {
        super::RSPAMD_PASSWORD_KEY => s.scan.rspamd_password.clone(),
        "virustotal_key" => s.intel.virustotal_key.clone(),
        "abuseipdb_key" => s.intel.abuseipdb_key.clone(),
        "phishtank_key" => s.intel.phishtank_key.clone(),
        "abusech_key" => s.intel.abusech_key.clone(),
        "ntfy_token" => s.background.notify.ntfy_token.clone(),
        "webhook_secret" => s.background.notify.webhook_secret.clone(),
        "smtp_username" => smtp().map(|u| decode(u.username())),
        "smtp_password" => smtp().and_then(|u| u.password().map(decode)),
        _ => None,
    };
    v.filter(|v| !v.is_empty())
}

async fn dashboard_or_env(s: &Settings, store: &Store, key: &str) -> Result<Option<String>, RuntimeError> {
    Ok(store.secret_setting(key).await?.or_else(|| env_secret(s, key)))
}

/// Feeds, their keys and the reputation keys in force for `o`.
pub(super) async fn intel_keys(s: &Settings, store: &Store, o: &Overrides) -> Result<IntelKeys, RuntimeError> {
    let feeds = match &o.feeds {
        // A feed the environment mirrors keeps its mirror URL.
        Some(names) => names
            .iter()
            .map(|n| (n.clone(), s.intel.feeds.iter().find(|(f, _)| f == n).and_then(|(_, u)| u.clone())))
            .collect(),
        None => s.intel.feeds.clone(),
    };
    Ok(IntelKeys {
        feeds,
        phishtank: dashboard_or_env(s, store, "phishtank_key").await?,
        abusech: dashboard_or_env(s, store, "abusech_key").await?,
        abuseipdb: dashboard_or_env(s, store, "abuseipdb_key").await?,
        virustotal: dashboard_or_env(s, store, "virustotal_key").await?,
    })
}

/// Notification rules, digest schedule and retention in force for `o`,
/// and SMTP credentials set apart from the URL.
pub(super) async fn background_settings(
    s: &Settings,
    store: &Store,
    o: &Overrides,
) -> Result<(BackgroundSettings, SmtpCredentials), RuntimeError> {
    let mut bg = s.background.clone();
    let n = &mut bg.notify;
    n.ntfy_token = dashboard_or_env(s, store, "ntfy_token").await?;
    n.webhook_secret = dashboard_or_env(s, store, "webhook_secret").await?;
    if let Some(v) = &o.ntfy_verdicts {
        n.ntfy_verdicts.clone_from(v);
    }
    if let Some(v) = &o.webhook_verdicts {
        n.webhook_verdicts.clone_from(v);
    }
    if let Some(m) = o.notify_mask {
        n.mask = m;
    }
    if let Some(g) = o.alert_gap_mins {
        n.alert_gap_mins = g;
    }
    if let Some(u) = &o.ntfy_url {
        n.ntfy_url = Some(u.clone());
    }
    if let Some(u) = &o.webhook_url {
        n.webhook_url = Some(u.clone());
    }
    if let Some(at) = &o.digest_at {
        bg.digest.at = parse_time(at)?;
    }
    let m = &mut bg.maintenance;
    for (slot, v) in [
        (&mut m.clean_days, o.retention_clean_days),
        (&mut m.quarantine_days, o.retention_quarantine_days),
        (&mut m.held_days, o.retention_held_days),
        (&mut m.hold_expunge_days, o.hold_expunge_days),
    ] {
        if let Some(v) = v {
            *slot = v;
        }
    }
    if m.held_days < m.hold_expunge_days {
        return Err(RuntimeError::Invalid(format!(
            "held mail's copy ({} days) must be kept at least as long as it stays in the hold folder ({} days)",
            m.held_days, m.hold_expunge_days
        )));
    }
    // Only a dashboard-set user or password replaces the URL's; the other
    // half comes from the URL.
    let (du, dp) = (
        store.secret_setting("smtp_username").await?,
        store.secret_setting("smtp_password").await?,
    );
    let smtp = if du.is_some() || dp.is_some() {
        du.or_else(|| env_secret(s, "smtp_username"))
            .zip(dp.or_else(|| env_secret(s, "smtp_password")))
    } else {
        None
    };
    Ok((bg, smtp))
}

fn parse_time(at: &str) -> Result<NaiveTime, RuntimeError> {
    NaiveTime::parse_from_str(at.trim(), "%H:%M")
        .map_err(|_| RuntimeError::Invalid(format!("the digest time {at:?} is not HH:MM (24-hour, local time)")))
}

/// Refuses dashboard rules that cannot work.
pub(super) fn validate(o: &Overrides) -> Result<(), RuntimeError> {
    let bad = |m: String| Err(RuntimeError::Invalid(m));
    if let Some(f) = o.feeds.iter().flatten().find(|f| !FEEDS.contains(&f.as_str())) {
        return bad(format!("unknown feed {f:?}; known: {}", FEEDS.join(", ")));
    }
    if let Some(g) = o.alert_gap_mins
        && !(1..=10080).contains(&g)
    {
        return bad("the alert interval must be 1 to 10080 minutes".into());
    }
    for (name, v) in [
        ("clean mail's copies", o.retention_clean_days),
        ("quarantined mail's copies", o.retention_quarantine_days),
        ("held mail's copies", o.retention_held_days),
        ("the hold folder", o.hold_expunge_days),
    ] {
        if let Some(d) = v
            && !(1..=3650).contains(&d)
        {
            return bad(format!("retention for {name} must be 1 to 3650 days"));
        }
    }
    if let Some(at) = &o.digest_at {
        parse_time(at)?;
    }
    for (name, u) in [("ntfy", &o.ntfy_url), ("webhook", &o.webhook_url)] {
        if let Some(u) = u {
            check_notify_url(name, u)?;
        }
    }
    let pass: &[Verdict] = &[Verdict::Pass];
    if o.ntfy_verdicts
        .iter()
        .chain(&o.webhook_verdicts)
        .flatten()
        .any(|v| pass.contains(v))
    {
        return bad("notifications are for flagged, quarantined or held mail, not passed mail".into());
    }
    Ok(())
}

/// Refuses a notification URL that cannot work or would leak: only http(s)
/// with a host, and no credentials in it (they would be shown on the page
/// and in logs; the ntfy token and the webhook secret are kept sealed
/// instead). Where it may point is checked when it is used: notifications
/// go through the SSRF-safe client.
fn check_notify_url(name: &str, u: &str) -> Result<(), RuntimeError> {
    let bad = |why: &str| Err(RuntimeError::Invalid(format!("the {name} URL {why}")));
    if u.len() > 2048 || u.chars().any(char::is_control) {
        return bad("must be at most 2048 characters, without control characters");
    }
    let Ok(url) = url::Url::parse(u) else {
        return bad("is not a URL (e.g. https://ntfy.example.org/postern)");
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return bad("must be an http or https URL with a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return bad("must not carry a user or password: set the ntfy token or the webhook secret instead");
    }
    Ok(())
}

/// Refuses a secret value that cannot be a key: empty, huge, or with
/// control characters (it ends up in HTTP headers).
fn check_value(v: &str) -> Result<(), RuntimeError> {
    if v.is_empty() || v.len() > 4096 {
        return Err(RuntimeError::Invalid("the value must be 1 to 4096 characters".into()));
    }
    if v.chars().any(char::is_control) {
        return Err(RuntimeError::Invalid(
            "the value must not contain control characters or line breaks".into(),
        ));
    }
    Ok(())
}

impl Runtime {
    /// Each secret's presence and source, never its value.
    pub async fn secret_statuses(&self) -> Result<Vec<SecretStatus>, RuntimeError> {
        let mut out = Vec::with_capacity(SECRETS.len());
        for sp in SECRETS {
            let stored = self.store.has_secret_setting(sp.key).await?;
            let env_set = env_secret(&self.settings, sp.key).is_some();
            // The environment's Rspamd password counts only where it is sent.
            let env_used = if sp.key == super::RSPAMD_PASSWORD_KEY {
                !stored && self.rspamd_password().await?.is_some()
            } else {
                env_set
            };
            let source = if stored {
                SecretSource::Dashboard
            } else if env_used {
                SecretSource::Environment
            } else {
                SecretSource::Unset
            };
            out.push(SecretStatus {
                key: sp.key,
                label: sp.label,
                env: sp.env,
                set: source != SecretSource::Unset,
                source,
                env_set,
            });
        }
        Ok(out)
    }

    /// Stores (or with `None` clears) a secret and puts it in force: the
    /// component that uses it is rebuilt and swapped in. The audit row names
    /// `actor` and the key, never the value.
    pub async fn set_secret(&self, key: &str, value: Option<&str>, actor: &str) -> Result<(), RuntimeError> {
        if !SECRETS.iter().any(|s| s.key == key) {
            return Err(RuntimeError::Invalid(format!("unknown secret {key:?}")));
        }
        if let Some(v) = value {
            check_value(v)?;
        }
        self.store.set_secret_setting(key, value, actor).await?;
        self.apply_settings().await?;
        tracing::info!(key, cleared = value.is_none(), actor, "secret changed; components rebuilt");
        Ok(())
    }

    /// Rebuilds what depends on keys and rules (feeds, reputation
    /// scanners, notifier, mailer, schedule) from the stored settings and
    /// the environment, and swaps it in with the pipeline.
    pub async fn apply_settings(&self) -> Result<(), RuntimeError> {
        let o = self.overrides().await?;
        let (bg, smtp) = background_settings(&self.settings, &self.store, &o).await?;
        self.background.set(bg, smtp)?;
        let keys = intel_keys(&self.settings, &self.store, &o).await?;
        let (fresh, changed) = self.intel.set_keys(keys);
        if changed {
            self.rebuild().await?;
        }
        if let Some(f) = fresh {
            // New feeds: serve what is cached on disk, then fetch.
            let rt = self.clone();
            tokio::spawn(async move {
                let _ = tokio::task::spawn_blocking(move || f.load_cached()).await;
                if let Err(e) = rt.refresh_feeds().await {
                    tracing::warn!(error = %e, "feed refresh after a settings change failed");
                }
                if let Err(e) = rt.rebuild_index().await {
                    tracing::warn!(error = %e, "threat index build failed");
                }
            });
        }
        Ok(())
    }

    /// The feeds switched on now.
    pub fn feeds_enabled(&self) -> Vec<String> {
        self.intel.keys().feeds.into_iter().map(|(n, _)| n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_credentials_come_from_the_url() {
        let mut s = Settings::for_data_dir("/tmp/x".into(), [7u8; 32]);
        s.background.digest.smtp_url = Some("smtps://digest%40example.org:p%3Ass@mail.example.org".into());
        assert_eq!(env_secret(&s, "smtp_username").as_deref(), Some("digest@example.org"));
        assert_eq!(env_secret(&s, "smtp_password").as_deref(), Some("p:ss"));
        s.background.digest.smtp_url = Some("smtps://mail.example.org".into());
        assert_eq!(env_secret(&s, "smtp_username"), None);
    }

    #[test]
    fn rules_are_checked() {
        let ok = Overrides {
            feeds: Some(vec!["urlhaus".into()]),
            digest_at: Some("07:30".into()),
            ..Default::default()
        };
        assert!(validate(&ok).is_ok());
        for bad in [
            Overrides {
                feeds: Some(vec!["nope".into()]),
                ..Default::default()
            },
            Overrides {
                digest_at: Some("7pm".into()),
                ..Default::default()
            },
            Overrides {
                retention_clean_days: Some(0),
                ..Default::default()
            },
            Overrides {
                ntfy_verdicts: Some(vec![Verdict::Pass]),
                ..Default::default()
            },
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
        assert!(check_value("a\r\nX-Evil: 1").is_err());
        assert!(check_value("").is_err());
        assert!(check_value("ok-key").is_ok());
    }
}
