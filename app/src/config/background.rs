//! Settings of the background duties: the daily maintenance run, notifications and the
//! quarantine digest. Every outbound channel is off until configured.

use super::env::Reader;
use super::problem::Problem;
use crate::domain::Verdict;
use chrono::NaiveTime;
use std::path::{Path, PathBuf};

/// Maintenance, notifications and digests.
#[derive(Debug, Clone)]
pub struct BackgroundSettings {
    /// The daily maintenance run.
    pub maintenance: MaintenanceSettings,
    /// ntfy and webhook notifications.
    pub notify: NotifySettings,
    /// Quarantine digests by email.
    pub digest: DigestSettings,
}

/// The daily maintenance run.
#[derive(Debug, Clone)]
pub struct MaintenanceSettings {
    /// Local time of day it runs (`POSTERN_MAINTENANCE_AT`, default 03:00).
    pub at: NaiveTime,
    /// Days an EML copy of mail that ended clean is kept (`POSTERN_RETENTION_CLEAN_DAYS`, 30).
    pub clean_days: u32,
    /// Days an EML copy of mail still in quarantine is kept (`POSTERN_RETENTION_QUARANTINE_DAYS`, 90).
    pub quarantine_days: u32,
    /// Days an EML copy of held ("deleted") mail is kept (`POSTERN_RETENTION_HELD_DAYS`, 90).
    pub held_days: u32,
    /// Days held mail stays in the hold folder before it is expunged (`POSTERN_HOLD_EXPUNGE_DAYS`, 30).
    pub hold_expunge_days: u32,
    /// Database backups kept (`POSTERN_BACKUP_KEEP`, 7; 0 turns backups off).
    pub backup_keep: u32,
    /// Where backups go (`POSTERN_BACKUP_DIR`, default `<data_dir>/backups`).
    pub backup_dir: PathBuf,
}

/// Where notifications go and what they say.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    /// ntfy topic URL (`POSTERN_NTFY_URL`); unset turns ntfy off.
    pub ntfy_url: Option<String>,
    /// ntfy access token, sent as a bearer token (`POSTERN_NTFY_TOKEN`).
    pub ntfy_token: Option<String>,
    /// Verdicts sent to ntfy (`POSTERN_NTFY_VERDICTS`, default quarantine,delete).
    pub ntfy_verdicts: Vec<Verdict>,
    /// Generic JSON webhook (`POSTERN_WEBHOOK_URL`); unset turns it off.
    pub webhook_url: Option<String>,
    /// Key for the body's HMAC-SHA256 signature (`POSTERN_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
    /// Verdicts sent to the webhook (`POSTERN_WEBHOOK_VERDICTS`, default flag,quarantine,delete).
    pub webhook_verdicts: Vec<Verdict>,
    /// Mask From and Subject in every notification (`POSTERN_NOTIFY_MASK`, default false).
    pub mask: bool,
    /// Least time between two alerts of one kind (`POSTERN_NOTIFY_ALERT_MINS`, default 60).
    pub alert_gap_mins: u32,
}

/// The quarantine digest.
#[derive(Debug, Clone, Default)]
pub struct DigestSettings {
    /// SMTP submission URL (`POSTERN_SMTP_URL`); unset turns digests off.
    pub smtp_url: Option<String>,
    /// The digest's sender (`POSTERN_DIGEST_FROM`).
    pub from: Option<String>,
    /// The dashboard's public base URL, for links (`POSTERN_PUBLIC_URL`).
    pub public_url: Option<String>,
    /// Local time of day digests go out (`POSTERN_DIGEST_AT`, default 08:00; weekly on Mondays).
    pub at: NaiveTime,
    /// Hours a digest link stays valid (`POSTERN_DIGEST_LINK_HOURS`, default 72).
    pub link_hours: u32,
    /// The admin's address for the daily report of what log watch saw
    /// (`POSTERN_DIGEST_ADMIN_TO`); unset: no admin digest.
    pub admin_to: Option<String>,
}

fn time_of_day(r: &mut Reader<'_>, key: &str, default: NaiveTime) -> NaiveTime {
    match r.get(key).map(str::to_string) {
        None => default,
        Some(v) => NaiveTime::parse_from_str(&v, "%H:%M").unwrap_or_else(|_| {
            r.problems.push(Problem::new(
                key,
                format!("{v:?} is not a time of day"),
                "use local 24-hour HH:MM, e.g. 03:00",
            ));
            default
        }),
    }
}

fn verdicts(r: &mut Reader<'_>, key: &str, default: &[Verdict]) -> Vec<Verdict> {
    let Some(v) = r.get(key).map(str::to_string) else {
        return default.to_vec();
    };
    let mut out = Vec::new();
    for w in v.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match Verdict::parse(&w.to_ascii_lowercase()) {
            Some(x) => out.push(x),
            None => r.problems.push(Problem::new(
                key,
                format!("{w:?} is not a verdict"),
                "comma-separated from pass, flag, junk, quarantine, delete",
            )),
        }
    }
    out
}

fn days(r: &mut Reader<'_>, key: &str, default: u64) -> u32 {
    u32::try_from(r.ranged(key, default, 1, 3650, "days")).unwrap_or(30)
}

pub(super) fn parse(r: &mut Reader<'_>, data_dir: &Path) -> BackgroundSettings {
    let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN);
    let maintenance = MaintenanceSettings {
        at: time_of_day(r, "POSTERN_MAINTENANCE_AT", at(3)),
        clean_days: days(r, "POSTERN_RETENTION_CLEAN_DAYS", 30),
        quarantine_days: days(r, "POSTERN_RETENTION_QUARANTINE_DAYS", 90),
        held_days: days(r, "POSTERN_RETENTION_HELD_DAYS", 90),
        hold_expunge_days: days(r, "POSTERN_HOLD_EXPUNGE_DAYS", 30),
        backup_keep: u32::try_from(r.ranged("POSTERN_BACKUP_KEEP", 7, 0, 365, "backups")).unwrap_or(7),
        backup_dir: r.get("POSTERN_BACKUP_DIR").map_or_else(|| data_dir.join("backups"), PathBuf::from),
    };
    if maintenance.held_days < maintenance.hold_expunge_days {
        r.problems.push(Problem::new(
            "POSTERN_RETENTION_HELD_DAYS",
            format!(
                "{} days is shorter than POSTERN_HOLD_EXPUNGE_DAYS ({}): held mail would lose its copy while still in the hold folder",
                maintenance.held_days, maintenance.hold_expunge_days
            ),
            "keep the EML copy at least as long as the hold folder keeps the message",
        ));
    }
    let notify = NotifySettings {
        ntfy_url: r.url("POSTERN_NTFY_URL"),
        ntfy_token: r.get("POSTERN_NTFY_TOKEN").map(str::to_string),
        ntfy_verdicts: verdicts(r, "POSTERN_NTFY_VERDICTS", &[Verdict::Quarantine, Verdict::Delete]),
        webhook_url: r.url("POSTERN_WEBHOOK_URL"),
        webhook_secret: r.get("POSTERN_WEBHOOK_SECRET").map(str::to_string),
        webhook_verdicts: verdicts(
            r,
            "POSTERN_WEBHOOK_VERDICTS",
            &[Verdict::Flag, Verdict::Junk, Verdict::Quarantine, Verdict::Delete],
        ),
        mask: r.parse("POSTERN_NOTIFY_MASK", false, "true or false"),
        alert_gap_mins: u32::try_from(r.ranged("POSTERN_NOTIFY_ALERT_MINS", 60, 1, 10080, "minutes")).unwrap_or(60),
    };
    BackgroundSettings {
        maintenance,
        notify,
        digest: digest(r),
    }
}

fn digest(r: &mut Reader<'_>) -> DigestSettings {
    let smtp_url = r.get("POSTERN_SMTP_URL").map(str::to_string);
    if let Some(u) = &smtp_url
        && !(u.starts_with("smtp://") || u.starts_with("smtps://"))
    {
        r.problems.push(Problem::new(
            "POSTERN_SMTP_URL",
            "is not an smtp:// or smtps:// URL",
            "e.g. smtps://user:pass@mail.example.org or smtp://user:pass@mail.example.org:587?tls=required",
        ));
    }
    if let Some(u) = smtp_url.as_deref().and_then(|u| url::Url::parse(u).ok())
        && u.scheme() == "smtp"
        && !u.query_pairs().any(|(k, v)| k == "tls" && v == "required")
        && !u
            .host_str()
            .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
    {
        r.problems.push(Problem::new(
            "POSTERN_SMTP_URL",
            "sends mail and credentials in the clear to a remote server",
            "use smtps://host (port 465) or smtp://host:587?tls=required",
        ));
    }
    let from = r.get("POSTERN_DIGEST_FROM").map(str::to_string);
    let public_url = r.url("POSTERN_PUBLIC_URL");
    if smtp_url.is_some() {
        if from.as_deref().is_none_or(|f| f.parse::<lettre::Address>().is_err()) {
            r.problems.push(Problem::new(
                "POSTERN_DIGEST_FROM",
                "must be an email address when POSTERN_SMTP_URL is set",
                "e.g. postern@example.org",
            ));
        }
        if public_url.is_none() {
            r.problems.push(Problem::new(
                "POSTERN_PUBLIC_URL",
                "must be set when POSTERN_SMTP_URL is set: digest links point at it",
                "the dashboard's address as users reach it, e.g. https://postern.example.org",
            ));
        }
    }
    let admin_to = r.get("POSTERN_DIGEST_ADMIN_TO").map(str::to_string);
    if let Some(a) = &admin_to
        && a.parse::<lettre::Address>().is_err()
    {
        r.problems.push(Problem::new(
            "POSTERN_DIGEST_ADMIN_TO",
            format!("{a:?} is not an email address"),
            "e.g. postmaster@example.org",
        ));
    }
    DigestSettings {
        admin_to,
        smtp_url,
        from,
        public_url,
        at: time_of_day(r, "POSTERN_DIGEST_AT", NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN)),
        link_hours: u32::try_from(r.ranged("POSTERN_DIGEST_LINK_HOURS", 72, 1, 720, "hours")).unwrap_or(72),
    }
}
