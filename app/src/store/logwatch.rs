//! Log watch: file offsets, authentication events and attacks, stored in
//! one transaction per batch so a restart neither re-reads nor skips a
//! line. Attackers become indicators (source `logwatch`); every attack row
//! is a sighting of its indicator.

use super::audit::{self, AuditEntry};
use super::{Result, Store};
use crate::domain::NewIndicator;
use crate::logwatch::IOC_SOURCE;
use crate::logwatch::parse::{AuthEvent, Outcome, Service};
use crate::logwatch::tail::Cursor;
use rusqlite::{OptionalExtension, Transaction, params};

/// Events older than this are dropped as new ones arrive.
const EVENT_DAYS: i64 = 30;
/// An indicator's expiry is pushed out (and the index rebuilt) only when
/// it moves by more than this, so a long attack does not rebuild the
/// index every few minutes.
const EXTEND_STEP_SECS: i64 = 6 * 3600;
/// Events replayed into the windows after a restart, at most.
const REPLAY_MAX: u32 = 200_000;

/// Where a source was read up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A file's offset.
    File(Cursor),
    /// The journal's cursor.
    Journal(String),
}

/// One attack as stored: an alert for one address (or network), enriched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttackRecord {
    /// Unix seconds.
    pub at: i64,
    /// Alert kind (`brute_force`, …).
    pub kind: String,
    /// The attacking address.
    pub ip: Option<String>,
    /// The network, for network alerts.
    pub network: Option<String>,
    /// The user name targeted.
    pub user: Option<String>,
    /// What the window counted.
    pub count: u32,
    /// Country code.
    pub country: Option<String>,
    /// AS number.
    pub asn: Option<u32>,
    /// AS organisation.
    pub as_org: Option<String>,
    /// Reverse DNS name.
    pub rdns: Option<String>,
    /// One line for the operator.
    pub detail: String,
    /// The indicator this attack is a sighting of.
    pub indicator: Option<NewIndicator>,
}

/// A stored attack, for the API and tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttackRow {
    /// Id.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Alert kind.
    pub kind: String,
    /// Address.
    pub ip: Option<String>,
    /// User name.
    pub user: Option<String>,
    /// Country code.
    pub country: Option<String>,
    /// AS number.
    pub asn: Option<i64>,
    /// Indicator id.
    pub indicator: Option<i64>,
    /// Detail.
    pub detail: String,
}

fn parse_unix(rfc3339: Option<&str>) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339?).ok().map(|t| t.timestamp())
}

/// Adds or strengthens an attacker indicator; returns its id and whether
/// the index must learn about it (new, more confident, or living longer).
fn upsert(tx: &Transaction<'_>, now: &str, i: &NewIndicator) -> Result<(i64, bool)> {
    let old: Option<(i64, i64, Option<String>, bool)> = tx
        .query_row(
            "SELECT id, confidence, expires_at, false_positive FROM indicators WHERE kind = ?1 AND value = ?2 AND source = ?3",
            params![i.kind, i.value, IOC_SOURCE],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((id, confidence, expires, false_positive)) = old else {
        let id = tx.query_row(
            "INSERT INTO indicators (kind, value, source, confidence, severity, expires_at, false_positive, note,
               created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, 'logwatch', ?8, ?8) RETURNING id",
            params![i.kind, i.value, IOC_SOURCE, i.confidence, i.severity, i.expires_at, i.note, now],
            |r| r.get(0),
        )?;
        return Ok((id, true));
    };
    // The operator said this address is fine: keep the sighting, change nothing.
    if false_positive {
        return Ok((id, false));
    }
    let stronger = i64::from(i.confidence) > confidence;
    let (old_exp, new_exp) = (parse_unix(expires.as_deref()), parse_unix(i.expires_at.as_deref()));
    let longer = matches!((old_exp, new_exp), (Some(o), Some(n)) if n > o + EXTEND_STEP_SECS);
    if stronger {
        tx.execute(
            "UPDATE indicators SET confidence = ?2, severity = ?3, note = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, i.confidence, i.severity, i.note, now],
        )?;
    }
    if longer {
        tx.execute(
            "UPDATE indicators SET expires_at = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, i.expires_at, now],
        )?;
    }
    Ok((id, stronger || longer))
}

fn service(s: &str) -> Service {
    match s {
        "smtp" => Service::Smtp,
        "imap" => Service::Imap,
        "pop3" => Service::Pop3,
        _ => Service::Other,
    }
}

fn outcome(s: &str) -> Option<Outcome> {
    Some(match s {
        "failed" => Outcome::Failed,
        "succeeded" => Outcome::Succeeded,
        "probe" => Outcome::Probe,
        "rejected" => Outcome::Rejected,
        _ => return None,
    })
}

impl Store {
    /// Where reading `source` stopped.
    pub async fn logwatch_cursor(&self, source: &str) -> Result<Option<Cursor>> {
        let source = source.to_string();
        self.call(move |db, _| {
            Ok(db
                .query_row(
                    "SELECT inode, offset, head_len, head_hash FROM logwatch_offsets WHERE source = ?1",
                    params![source],
                    |r| {
                        Ok(Cursor {
                            inode: r.get::<_, i64>(0)? as u64,
                            offset: r.get::<_, i64>(1)?.max(0) as u64,
                            head_len: r.get::<_, i64>(2)?.max(0) as u64,
                            head: r.get(3)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    /// Where reading the journal `source` stopped.
    pub async fn logwatch_journal_cursor(&self, source: &str) -> Result<Option<String>> {
        let source = source.to_string();
        self.call(move |db, _| {
            Ok(db
                .query_row("SELECT cursor FROM logwatch_journal WHERE source = ?1", params![source], |r| {
                    r.get(0)
                })
                .optional()?)
        })
        .await
    }

    /// Stores a batch read from `source`: its events, its attacks (each
    /// upserting its indicator and recording the sighting) and the new
    /// position, all or nothing. Returns how many indicators are new or
    /// changed, so the caller rebuilds the index and claws back.
    pub async fn logwatch_commit(
        &self,
        source: &str,
        position: Option<Position>,
        events: Vec<AuthEvent>,
        attacks: Vec<AttackRecord>,
    ) -> Result<usize> {
        let source = source.to_string();
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO logwatch_events (at, source, service, outcome, ip, username, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for e in &events {
                    ins.execute(params![
                        e.at,
                        source,
                        e.service.as_str(),
                        e.outcome.as_str(),
                        e.ip.to_string(),
                        e.user,
                        e.attempts
                    ])?;
                }
            }
            let mut changed = Vec::new();
            for a in &attacks {
                let indicator = match &a.indicator {
                    Some(i) => {
                        let (id, ch) = upsert(&tx, &ctx.now, i)?;
                        if ch {
                            changed.push(format!("{} {}", i.kind, i.value));
                        }
                        Some(id)
                    }
                    None => None,
                };
                tx.execute(
                    "INSERT INTO logwatch_alerts (at, kind, ip, network, username, count, country, asn, as_org, rdns, indicator, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        a.at, a.kind, a.ip, a.network, a.user, a.count, a.country, a.asn, a.as_org, a.rdns, indicator, a.detail
                    ],
                )?;
                if let Some(ip) = &a.ip {
                    let attack = super::incidents::Attack {
                        alert: tx.last_insert_rowid(),
                        at: a.at,
                        ip,
                        asn: a.asn,
                        as_org: a.as_org.as_deref(),
                        country: a.country.as_deref(),
                        detail: &a.detail,
                    };
                    super::incidents::on_attack(&tx, &ctx.now, &attack)?;
                }
            }
            if !changed.is_empty() {
                changed.sort();
                changed.dedup();
                let mut detail = changed.iter().take(20).cloned().collect::<Vec<_>>().join(", ");
                if changed.len() > 20 {
                    detail.push_str(&format!(" and {} more", changed.len() - 20));
                }
                let e = AuditEntry {
                    actor: "logwatch".into(),
                    event: "ioc_added".into(),
                    detail: format!("attackers from the mail server's log: {detail}"),
                    ..Default::default()
                };
                audit::insert(&tx, &ctx.now, &e)?;
            }
            if let Some(Position::Journal(c)) = &position {
                tx.execute(
                    "INSERT INTO logwatch_journal (source, cursor, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                    params![source, c, ctx.now],
                )?;
            }
            if let Some(Position::File(c)) = &position {
                tx.execute(
                    "INSERT INTO logwatch_offsets (source, inode, offset, head_len, head_hash, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (source) DO UPDATE SET inode = excluded.inode, offset = excluded.offset,
                       head_len = excluded.head_len, head_hash = excluded.head_hash, updated_at = excluded.updated_at",
                    params![source, c.inode as i64, c.offset as i64, c.head_len as i64, c.head, ctx.now],
                )?;
            }
            if let Some(newest) = events.iter().map(|e| e.at).max() {
                tx.execute("DELETE FROM logwatch_events WHERE at < ?1", params![newest - EVENT_DAYS * 86_400])?;
            }
            tx.commit()?;
            Ok(changed.len())
        })
        .await
    }

    /// Events since `since` (unix seconds), oldest first, to warm the windows.
    pub async fn logwatch_events_since(&self, since: i64) -> Result<Vec<AuthEvent>> {
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT at, service, outcome, ip, username, attempts FROM logwatch_events WHERE at >= ?1 ORDER BY at, id LIMIT ?2",
            )?;
            let rows = st.query_map(params![since, REPLAY_MAX], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (at, svc, oc, ip, user, attempts) = row?;
                // A row this version cannot read is skipped, not fatal.
                let (Some(outcome), Ok(ip)) = (outcome(&oc), ip.parse()) else {
                    continue;
                };
                out.push(AuthEvent {
                    at,
                    service: service(&svc),
                    outcome,
                    ip,
                    user,
                    attempts: attempts.clamp(1, 1000) as u32,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Attacks, newest first.
    pub async fn logwatch_attacks(&self, limit: u32) -> Result<Vec<AttackRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT id, at, kind, ip, username, country, asn, indicator, detail FROM logwatch_alerts ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map(params![limit], |r| {
                Ok(AttackRow {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    ip: r.get(3)?,
                    user: r.get(4)?,
                    country: r.get(5)?,
                    asn: r.get(6)?,
                    indicator: r.get(7)?,
                    detail: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
