//! Operator indicators (IOCs), their sightings, the observables each
//! message points at, and the reputation cache. Values arrive already
//! validated and normalised by `intel::ioc`.

use super::audit::{self, AuditEntry};
use super::{Result, Store};
use crate::domain::{Decision, NewIndicator};
use rusqlite::{OptionalExtension, Transaction, params};

/// A stored indicator.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IndicatorRow {
    /// Id.
    pub id: i64,
    /// The indicator.
    #[serde(flatten)]
    pub ind: NewIndicator,
    /// Who added it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// Messages it matched.
    pub sightings: i64,
}

/// One match of an indicator against a message, with where the message is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SightingRow {
    /// Message row.
    pub message: i64,
    /// Account.
    pub account: String,
    /// Folder it arrived in.
    pub mailbox: String,
    /// Subject.
    pub subject: Option<String>,
    /// Sender.
    pub from: Option<String>,
    /// Feed or IOC source.
    pub source: String,
    /// What matched.
    pub kind: String,
    /// The message's value.
    pub value: String,
    /// When.
    pub seen_at: String,
}

/// A recent message's observable, for claw-back.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentObservable {
    /// Message row.
    pub message: i64,
    /// Kind.
    pub kind: String,
    /// Value.
    pub value: String,
}

/// Mail first seen since `?1` that claw-back may still act on: left in
/// place by Postern, not observe-only, not released or deleted.
const ACTIONABLE: &str = "m.first_seen >= ?1 AND m.observe_only = 0 AND m.quarantined = 0 AND m.disposition IS NULL
    AND m.verdict IN ('pass', 'flag')";

const IND_COLS: &str = "i.id, i.kind, i.value, i.source, i.confidence, i.severity, i.expires_at, i.false_positive, i.note,
    i.created_by, i.created_at, (SELECT COUNT(*) FROM sightings s WHERE s.indicator = i.id)";

fn ind_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IndicatorRow> {
    Ok(IndicatorRow {
        id: r.get(0)?,
        ind: NewIndicator {
            kind: r.get(1)?,
            value: r.get(2)?,
            source: r.get(3)?,
            confidence: r.get::<_, i64>(4)?.clamp(0, 100) as u8,
            severity: r.get(5)?,
            expires_at: r.get(6)?,
            false_positive: r.get(7)?,
            note: r.get(8)?,
        },
        created_by: r.get(9)?,
        created_at: r.get(10)?,
        sightings: r.get(11)?,
    })
}

/// Stores the observables and sightings a decision carries, in the
/// caller's transaction (with the decision itself).
pub(super) fn record_evidence(tx: &Transaction<'_>, now: &str, message: i64, d: &Decision) -> Result<()> {
    let mut obs = tx.prepare_cached("INSERT OR IGNORE INTO observables (message, kind, value) VALUES (?1, ?2, ?3)")?;
    for o in &d.observables {
        obs.execute(params![message, o.kind, o.value])?;
    }
    let mut sight = tx.prepare_cached(
        "INSERT OR IGNORE INTO sightings (indicator, source, kind, value, message, seen_at)
         VALUES ((SELECT id FROM indicators WHERE id = ?1), ?2, ?3, ?4, ?5, ?6)",
    )?;
    for f in d.reports.iter().flat_map(|r| &r.findings) {
        if let Some(i) = &f.indicator {
            sight.execute(params![i.ioc, i.source, i.kind, i.value, message, now])?;
        }
    }
    super::incidents::link_message(tx, now, message)
}

impl Store {
    /// Adds or updates indicators; returns their ids in order.
    pub async fn add_indicators(&self, items: Vec<NewIndicator>, actor: &str) -> Result<Vec<i64>> {
        let actor = actor.to_string();
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let mut ids = Vec::with_capacity(items.len());
            for i in &items {
                let id: i64 = tx.query_row(
                    "INSERT INTO indicators (kind, value, source, confidence, severity, expires_at, false_positive, note,
                       created_by, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                     ON CONFLICT (kind, value, source) DO UPDATE SET confidence = excluded.confidence,
                       severity = excluded.severity, expires_at = excluded.expires_at,
                       false_positive = excluded.false_positive, note = excluded.note, updated_at = excluded.updated_at
                     RETURNING id",
                    params![
                        i.kind,
                        i.value,
                        i.source,
                        i.confidence,
                        i.severity,
                        i.expires_at,
                        i.false_positive,
                        i.note,
                        actor,
                        ctx.now
                    ],
                    |r| r.get(0),
                )?;
                ids.push(id);
            }
            let detail = match items.as_slice() {
                [one] => format!(
                    "{} {} from {} (confidence {}, {})",
                    one.kind, one.value, one.source, one.confidence, one.severity
                ),
                many => format!("{} indicators", many.len()),
            };
            let e = AuditEntry {
                actor: actor.clone(),
                event: "ioc_added".into(),
                detail,
                ..Default::default()
            };
            audit::insert(&tx, &ctx.now, &e)?;
            tx.commit()?;
            Ok(ids)
        })
        .await
    }

    /// Indicators, newest first.
    pub async fn list_indicators(&self, limit: u32, offset: u32) -> Result<Vec<IndicatorRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(&format!(
                "SELECT {IND_COLS} FROM indicators i ORDER BY i.id DESC LIMIT ?1 OFFSET ?2"
            ))?;
            let rows = st.query_map(params![limit, offset], ind_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// One indicator.
    pub async fn indicator(&self, id: i64) -> Result<Option<IndicatorRow>> {
        self.call(move |db, _| {
            Ok(db
                .query_row(
                    &format!("SELECT {IND_COLS} FROM indicators i WHERE i.id = ?1"),
                    params![id],
                    ind_row,
                )
                .optional()?)
        })
        .await
    }

    /// Every indicator, for building the index (expiry is checked there).
    pub async fn all_indicators(&self) -> Result<Vec<IndicatorRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(&format!("SELECT {IND_COLS} FROM indicators i ORDER BY i.id"))?;
            let rows = st.query_map([], ind_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Changes to the table show as a new (count, newest update) pair, so a
    /// running daemon notices imports made by `postern ioc` as well.
    pub async fn ioc_fingerprint(&self) -> Result<(i64, Option<String>)> {
        self.call(move |db, _| {
            Ok(db.query_row("SELECT COUNT(*), MAX(updated_at) FROM indicators", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
        .await
    }

    /// Indicators added or changed after `since` (RFC 3339).
    pub async fn indicators_updated_since(&self, since: Option<String>) -> Result<Vec<IndicatorRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(&format!(
                "SELECT {IND_COLS} FROM indicators i WHERE ?1 IS NULL OR i.updated_at > ?1 ORDER BY i.id"
            ))?;
            let rows = st.query_map(params![since], ind_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Deletes an indicator (its sightings stay, without the link).
    pub async fn delete_indicator(&self, id: i64, actor: &str) -> Result<bool> {
        let actor = actor.to_string();
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let gone: Option<(String, String)> = tx
                .query_row("DELETE FROM indicators WHERE id = ?1 RETURNING kind, value", params![id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((k, v)) = &gone {
                let e = AuditEntry {
                    actor,
                    event: "ioc_deleted".into(),
                    detail: format!("#{id} {k} {v}"),
                    ..Default::default()
                };
                audit::insert(&tx, &ctx.now, &e)?;
            }
            tx.commit()?;
            Ok(gone.is_some())
        })
        .await
    }

    /// Sightings of one indicator (feed matches included by value), newest first.
    pub async fn sightings(&self, indicator: i64, limit: u32) -> Result<Vec<SightingRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT s.message, m.account, m.mailbox, m.subject, m.from_addr, s.source, s.kind, s.value, s.seen_at
                 FROM sightings s JOIN messages m ON m.id = s.message
                 WHERE s.indicator = ?1 ORDER BY s.id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![indicator, limit], |r| {
                Ok(SightingRow {
                    message: r.get(0)?,
                    account: r.get(1)?,
                    mailbox: r.get(2)?,
                    subject: r.get(3)?,
                    from: r.get(4)?,
                    source: r.get(5)?,
                    kind: r.get(6)?,
                    value: r.get(7)?,
                    seen_at: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Sightings recorded for a message.
    pub async fn message_sightings(&self, message: i64) -> Result<Vec<(String, Option<i64>, String, String)>> {
        self.call(move |db, _| {
            let mut st = db.prepare("SELECT source, indicator, kind, value FROM sightings WHERE message = ?1 ORDER BY id")?;
            let rows = st.query_map(params![message], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Observables of messages first seen since `since` (RFC 3339) that
    /// Postern left in place and may still act on: not observe-only, not
    /// quarantined, not released or deleted by the operator.
    pub async fn recent_observables(&self, since: &str) -> Result<Vec<RecentObservable>> {
        let since = since.to_string();
        self.call(move |db, _| {
            let mut st = db.prepare(
                &format!("SELECT o.message, o.kind, o.value FROM observables o JOIN messages m ON m.id = o.message WHERE {ACTIONABLE} ORDER BY o.message"),
            )?;
            let rows = st.query_map(params![since], |r| {
                Ok(RecentObservable {
                    message: r.get(0)?,
                    kind: r.get(1)?,
                    value: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Messages first seen since `since` that claw-back may still act on.
    pub async fn recent_actionable(&self, since: &str) -> Result<Vec<i64>> {
        let since = since.to_string();
        self.call(move |db, _| {
            let mut st = db.prepare(&format!("SELECT m.id FROM messages m WHERE {ACTIONABLE} ORDER BY m.id"))?;
            let rows = st.query_map(params![since], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// A cached reputation answer that has not expired at `now` (unix seconds).
    pub async fn rep_get(&self, service: &str, key: &str, now: i64) -> Result<Option<String>> {
        let (s, k) = (service.to_string(), key.to_string());
        self.call(move |db, _| {
            Ok(db
                .query_row(
                    "SELECT value FROM rep_cache WHERE service = ?1 AND key = ?2 AND expires_at > ?3",
                    params![s, k, now],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// Caches a reputation answer until `expires_at` (unix seconds).
    pub async fn rep_put(&self, service: &str, key: &str, value: &str, expires_at: i64) -> Result<()> {
        let (s, k, v) = (service.to_string(), key.to_string(), value.to_string());
        self.call(move |db, _| {
            db.execute(
                "INSERT INTO rep_cache (service, key, value, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                params![s, k, v, expires_at],
            )?;
            Ok(())
        })
        .await
    }

    /// Drops expired cache rows; returns how many.
    pub async fn rep_sweep(&self, now: i64) -> Result<usize> {
        self.call(move |db, _| Ok(db.execute("DELETE FROM rep_cache WHERE expires_at <= ?1", params![now])?))
            .await
    }
}
