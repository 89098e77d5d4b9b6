//! Log watch read side (issue 20, outputs): attackers and attempts for the
//! dashboard and its CSV exports, per-day series for the charts, the
//! attacker indicators the blocklist file holds, and the admin digest's
//! summary. Everything here only reads.

use super::{Result, Store};
use crate::logwatch::IOC_SOURCE;
use rusqlite::params;

/// What the attacks page and its exports are narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct AttackFilter {
    /// Unix seconds, inclusive.
    pub since: i64,
    /// One address only.
    #[serde(default)]
    pub ip: Option<String>,
    /// One user name only (attempts) or attackers that tried it.
    #[serde(default)]
    pub user: Option<String>,
    /// One country code only (attackers).
    #[serde(default)]
    pub country: Option<String>,
}

/// One attacking address over the filter's period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttackerRow {
    /// The address.
    pub ip: String,
    /// Failed logins, probes and rejects from it (by the log's count).
    pub attempts: i64,
    /// Distinct user names it tried.
    pub users: i64,
    /// Alerts it raised.
    pub alerts: i64,
    /// Country code, from the latest alert.
    pub country: Option<String>,
    /// AS number.
    pub asn: Option<i64>,
    /// AS organisation.
    pub as_org: Option<String>,
    /// Unix seconds of its first alert or attempt in the period.
    pub first_seen: i64,
    /// Unix seconds of its latest.
    pub last_seen: i64,
    /// Its log-watch indicator: `active`, `expired`, `false_positive` or `none`.
    pub ioc: String,
    /// That indicator's id.
    pub ioc_id: Option<i64>,
    /// Its expiry (RFC 3339).
    pub ioc_expires: Option<String>,
}

/// One authentication event as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRow {
    /// Id (the export's paging cursor).
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// The log it was read from.
    pub source: String,
    /// smtp | imap | pop3 | other.
    pub service: String,
    /// failed | succeeded | probe | rejected.
    pub outcome: String,
    /// Client address.
    pub ip: String,
    /// User name tried.
    pub user: Option<String>,
    /// Attempts the line stood for.
    pub attempts: i64,
}

/// A count by a name (user, country, ASN).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NamedCount {
    /// The user name, country code or `AS<n> <org>`.
    pub name: String,
    /// How many.
    pub count: i64,
}

/// One day of attack activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttackDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Failed logins, probes and rejects.
    pub attempts: i64,
    /// Distinct attacking addresses (with an alert that day).
    pub attackers: i64,
    /// Distinct user names tried.
    pub users: i64,
}

/// One day's attacking addresses by a dimension (country or ASN).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DayShare {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Country code or `AS<n>`; `unknown` without enrichment.
    pub name: String,
    /// Distinct addresses.
    pub count: i64,
}

/// A current attacker indicator, for the blocklist file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    /// `ip` or `cidr`.
    pub kind: String,
    /// The address or network.
    pub value: String,
    /// RFC 3339; `None`: never.
    pub expires_at: Option<String>,
}

/// The admin digest's log-watch section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogwatchSummary {
    /// Alerts raised.
    pub attacks: i64,
    /// Distinct attacking addresses.
    pub attackers: i64,
    /// Failed logins, probes and rejects.
    pub attempts: i64,
    /// The busiest attackers.
    pub top: Vec<AttackerRow>,
    /// Compromise suspicions, one line each.
    pub compromises: Vec<String>,
    /// Incidents opened, as (id, title).
    pub incidents: Vec<(i64, String)>,
}

/// Outcomes that count as an attempt at someone else's account.
const HOSTILE: &str = "outcome IN ('failed', 'probe', 'rejected')";

const ATTACKERS: &str = "WITH a AS (
    SELECT ip, COUNT(*) AS alerts, MIN(at) AS first_at, MAX(at) AS last_at, MAX(id) AS latest
    FROM logwatch_alerts WHERE ip IS NOT NULL AND at >= ?1 AND (?2 IS NULL OR ip = ?2) GROUP BY ip
  ), e AS (
    SELECT ip, SUM(attempts) AS n, COUNT(DISTINCT username) AS users, MIN(at) AS first_at, MAX(at) AS last_at,
      MAX(CASE WHEN ?3 IS NOT NULL AND username = ?3 THEN 1 ELSE 0 END) AS tried
    FROM logwatch_events WHERE at >= ?1 AND ip IN (SELECT ip FROM a) AND outcome IN ('failed', 'probe', 'rejected') GROUP BY ip
  )
  SELECT a.ip, COALESCE(e.n, 0), COALESCE(e.users, 0), a.alerts, l.country, l.asn, l.as_org,
    MIN(a.first_at, COALESCE(e.first_at, a.first_at)), MAX(a.last_at, COALESCE(e.last_at, a.last_at)),
    i.id, i.expires_at, COALESCE(i.false_positive, 0)
  FROM a JOIN logwatch_alerts l ON l.id = a.latest
  LEFT JOIN e ON e.ip = a.ip
  LEFT JOIN indicators i ON i.kind = 'ip' AND i.value = a.ip AND i.source = ?4
  WHERE (?3 IS NULL OR e.tried = 1) AND (?5 IS NULL OR l.country = ?5)";

fn ioc_status(id: Option<i64>, expires: Option<&str>, false_positive: bool, now: &str) -> &'static str {
    match (id, false_positive) {
        (None, _) => "none",
        (Some(_), true) => "false_positive",
        (Some(_), false) if is_live(expires, now) => "active",
        _ => "expired",
    }
}

/// Whether an indicator expiring at `expires` (RFC 3339) is live at `now`.
pub(crate) fn is_live(expires: Option<&str>, now: &str) -> bool {
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (expires, parse(now)) {
        (None, _) => true,
        (Some(e), Some(now)) => parse(e).is_some_and(|e| e > now),
        (Some(_), None) => false,
    }
}

fn attackers(db: &rusqlite::Connection, now: &str, f: &AttackFilter, order: &str, limit: u32, offset: i64) -> Result<Vec<AttackerRow>> {
    let mut st = db.prepare(&format!("{ATTACKERS} ORDER BY {order} LIMIT ?6 OFFSET ?7"))?;
    let rows = st.query_map(params![f.since, f.ip, f.user, IOC_SOURCE, f.country, limit, offset], |r| {
        let (id, exp, fp): (Option<i64>, Option<String>, bool) = (r.get(9)?, r.get(10)?, r.get(11)?);
        Ok(AttackerRow {
            ip: r.get(0)?,
            attempts: r.get(1)?,
            users: r.get(2)?,
            alerts: r.get(3)?,
            country: r.get(4)?,
            asn: r.get(5)?,
            as_org: r.get(6)?,
            first_seen: r.get(7)?,
            last_seen: r.get(8)?,
            ioc: ioc_status(id, exp.as_deref(), fp, now).into(),
            ioc_id: id,
            ioc_expires: exp,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn named(db: &rusqlite::Connection, sql: &str, since: i64, limit: u32) -> Result<Vec<NamedCount>> {
    let mut st = db.prepare(sql)?;
    let rows = st.query_map(params![since, limit], |r| {
        Ok(NamedCount {
            name: r.get(0)?,
            count: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Store {
    /// Attacking addresses matching `f`, busiest first.
    pub async fn logwatch_attackers(&self, f: AttackFilter, limit: u32) -> Result<Vec<AttackerRow>> {
        self.call(move |db, ctx| attackers(db, &ctx.now, &f, "2 DESC, 1", limit, 0)).await
    }

    /// Attacking addresses matching `f` in address order, `limit` from
    /// `offset` (the export's pages).
    pub async fn logwatch_attackers_page(&self, f: AttackFilter, offset: i64, limit: u32) -> Result<Vec<AttackerRow>> {
        self.call(move |db, ctx| attackers(db, &ctx.now, &f, "1", limit, offset)).await
    }

    /// Authentication events matching `f`, newest first, with ids below `before`.
    pub async fn logwatch_attempts(&self, f: AttackFilter, before: Option<i64>, limit: u32) -> Result<Vec<AttemptRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT id, at, source, service, outcome, ip, username, attempts FROM logwatch_events
                 WHERE at >= ?1 AND (?2 IS NULL OR ip = ?2) AND (?3 IS NULL OR username = ?3) AND (?4 IS NULL OR id < ?4)
                 ORDER BY id DESC LIMIT ?5",
            )?;
            let rows = st.query_map(params![f.since, f.ip, f.user, before, limit], |r| {
                Ok(AttemptRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    source: r.get(2)?,
                    service: r.get(3)?,
                    outcome: r.get(4)?,
                    ip: r.get(5)?,
                    user: r.get(6)?,
                    attempts: r.get(7)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Per-day attempts, attackers and users tried since `since`, oldest first.
    pub async fn logwatch_days(&self, since: i64) -> Result<Vec<AttackDay>> {
        self.call(move |db, _| {
            let mut st = db.prepare(&format!(
                "SELECT d, SUM(n), MAX(attackers), MAX(users) FROM (
                   SELECT date(at, 'unixepoch') AS d, SUM(attempts) AS n, 0 AS attackers, COUNT(DISTINCT username) AS users
                   FROM logwatch_events WHERE at >= ?1 AND {HOSTILE} GROUP BY d
                   UNION ALL
                   SELECT date(at, 'unixepoch'), 0, COUNT(DISTINCT ip), 0 FROM logwatch_alerts WHERE at >= ?1 AND ip IS NOT NULL GROUP BY 1
                 ) GROUP BY d ORDER BY d"
            ))?;
            let rows = st.query_map(params![since], |r| {
                Ok(AttackDay {
                    day: r.get(0)?,
                    attempts: r.get(1)?,
                    attackers: r.get(2)?,
                    users: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Per-day distinct attacking addresses by country (`by_asn` false) or ASN.
    pub async fn logwatch_day_shares(&self, since: i64, by_asn: bool) -> Result<Vec<DayShare>> {
        let dim = if by_asn {
            "COALESCE('AS' || asn, 'unknown')"
        } else {
            "COALESCE(country, 'unknown')"
        };
        self.call(move |db, _| {
            let mut st = db.prepare(&format!(
                "SELECT date(at, 'unixepoch') AS d, {dim} AS k, COUNT(DISTINCT ip) FROM logwatch_alerts
                 WHERE at >= ?1 AND ip IS NOT NULL GROUP BY d, k ORDER BY d, k"
            ))?;
            let rows = st.query_map(params![since], |r| {
                Ok(DayShare {
                    day: r.get(0)?,
                    name: r.get(1)?,
                    count: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The most tried user names, countries and ASNs since `since`.
    pub async fn logwatch_tops(&self, since: i64, limit: u32) -> Result<(Vec<NamedCount>, Vec<NamedCount>, Vec<NamedCount>)> {
        self.call(move |db, _| {
            let users = named(
                db,
                &format!(
                    "SELECT username, SUM(attempts) FROM logwatch_events WHERE at >= ?1 AND username IS NOT NULL AND {HOSTILE}
                     GROUP BY username ORDER BY 2 DESC, 1 LIMIT ?2"
                ),
                since,
                limit,
            )?;
            let countries = named(
                db,
                "SELECT COALESCE(country, 'unknown'), COUNT(DISTINCT ip) FROM logwatch_alerts WHERE at >= ?1 AND ip IS NOT NULL
                 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?2",
                since,
                limit,
            )?;
            let asns = named(
                db,
                "SELECT COALESCE('AS' || asn || COALESCE(' ' || MAX(as_org), ''), 'unknown'), COUNT(DISTINCT ip) FROM logwatch_alerts
                 WHERE at >= ?1 AND ip IS NOT NULL GROUP BY asn ORDER BY 2 DESC, 1 LIMIT ?2",
                since,
                limit,
            )?;
            Ok((users, countries, asns))
        })
        .await
    }

    /// Log-watch address and network indicators that are not marked false
    /// positives (expiry is the caller's to judge, on its clock).
    pub async fn logwatch_block_entries(&self) -> Result<Vec<BlockEntry>> {
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT kind, value, expires_at FROM indicators
                 WHERE source = ?1 AND kind IN ('ip', 'cidr') AND false_positive = 0 ORDER BY kind, value",
            )?;
            let rows = st.query_map(params![IOC_SOURCE], |r| {
                Ok(BlockEntry {
                    kind: r.get(0)?,
                    value: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// What log watch saw since `since` (unix seconds; incidents by their
    /// creation), for the admin digest.
    pub async fn logwatch_summary(&self, since: i64, top: u32) -> Result<LogwatchSummary> {
        self.call(move |db, ctx| {
            let (attacks, addresses): (i64, i64) = db.query_row(
                "SELECT COUNT(*), COUNT(DISTINCT ip) FROM logwatch_alerts WHERE at >= ?1",
                params![since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let attempts: i64 = db.query_row(
                &format!("SELECT COALESCE(SUM(attempts), 0) FROM logwatch_events WHERE at >= ?1 AND {HOSTILE}"),
                params![since],
                |r| r.get(0),
            )?;
            let f = AttackFilter { since, ..Default::default() };
            let top = attackers(db, &ctx.now, &f, "2 DESC, 1", top, 0)?;
            let mut st = db.prepare(
                "SELECT detail FROM logwatch_alerts WHERE at >= ?1 AND kind = 'compromise_suspicion' AND ip IS NOT NULL ORDER BY at, id LIMIT 100",
            )?;
            let compromises: Vec<String> = st.query_map(params![since], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            let since_text = chrono::DateTime::from_timestamp(since, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default();
            let mut st = db.prepare("SELECT id, title FROM incidents WHERE created_at >= ?1 ORDER BY id LIMIT 100")?;
            let incidents: Vec<(i64, String)> = st
                .query_map(params![since_text], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(LogwatchSummary {
                attacks,
                attackers: addresses,
                attempts,
                top,
                compromises,
                incidents,
            })
        })
        .await
    }
}

#[cfg(test)]
#[path = "logwatch_report_tests.rs"]
mod tests;
