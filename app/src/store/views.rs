//! Read-only queries behind the dashboard and its API. Every list is
//! keyset-paginated on the row id so page N costs the same as page 1.

use super::audit::AuditRow;
use super::{Result, Store};
use rusqlite::{OptionalExtension, params};

/// Filters for message lists.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct MessageFilter {
    /// Only this verdict.
    pub verdict: Option<String>,
    /// Only this account.
    pub account: Option<String>,
    /// Substring of sender or subject.
    pub q: Option<String>,
    /// Only this category (`crate::scan::category::FILTERS`), e.g. `virus`
    /// or `observe`.
    #[serde(default)]
    pub category: Option<String>,
    /// Only messages sitting in quarantine or hold.
    #[serde(default)]
    pub quarantined: bool,
    /// Rows with an id below this (the next page).
    pub before: Option<i64>,
    /// Page size (capped at 200).
    pub limit: Option<u32>,
}

/// One line of a message list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MessageSummary {
    /// Row id.
    pub id: i64,
    /// When Postern saw it.
    pub first_seen: String,
    /// Account.
    pub account: String,
    /// Folder it arrived in.
    pub mailbox: String,
    /// Sender.
    pub from: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Verdict.
    pub verdict: Option<String>,
    /// Policy score.
    pub score: Option<f64>,
    /// Tags, comma-separated.
    pub tags: Option<String>,
    /// Processing status.
    pub status: String,
    /// Folder it sits in now, when Postern moved it.
    pub location: Option<String>,
    /// In quarantine or hold now.
    pub quarantined: bool,
    /// released | deleted | gone.
    pub disposition: Option<String>,
    /// Scanned without acting.
    pub observe_only: bool,
    /// Why, in a word: virus, phishing, spam, blocked sender, scanner down
    /// (`None` for mail that passed or was not scanned).
    pub category: Option<&'static str>,
}

/// Everything about one message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MessageDetail {
    /// The list fields.
    #[serde(flatten)]
    pub summary: MessageSummary,
    /// UIDVALIDITY it arrived under.
    pub uidvalidity: u32,
    /// UID it arrived as.
    pub uid: u32,
    /// Message-ID.
    pub message_id: Option<String>,
    /// SHA-256 of the raw message.
    pub sha256: String,
    /// Size in bytes.
    pub size: i64,
    /// Server INTERNALDATE.
    pub internal_date: Option<String>,
    /// Why the verdict.
    pub reason: Option<String>,
    /// Every scanner's report (JSON).
    pub scan_json: Option<String>,
    /// Stored EML copy.
    pub eml_path: Option<String>,
    /// Audit rows about it, newest first.
    pub history: Vec<AuditRow>,
    /// Why its pending action or operator request has not gone through
    /// yet (a lost connection, a move waiting on the user's mail marked
    /// deleted), when one is pending and said so.
    pub pending_note: Option<String>,
}

/// Counts for one day.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DayCounts {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Passed.
    pub pass: i64,
    /// Flagged.
    pub flag: i64,
    /// Moved to Junk (or marked `$Junk`).
    pub junk: i64,
    /// Quarantined.
    pub quarantine: i64,
    /// Held ("delete").
    pub delete: i64,
    /// Would have been acted on but was only recorded (shadow mode,
    /// backfill): counted here, not under its verdict.
    #[serde(default)]
    pub observed: i64,
    /// Acted on, then released by an operator: counted here, not under its
    /// verdict (it was a false positive).
    #[serde(default)]
    pub released: i64,
}

/// A name and how often it was seen.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Count {
    /// Sender or domain.
    pub name: String,
    /// Messages.
    pub total: i64,
    /// Of which were not passed.
    pub bad: i64,
}

pub(super) const SUMMARY_COLS: &str = "id, first_seen, account, mailbox, from_addr, subject, verdict, score, tags, status,
    location_mailbox, quarantined, disposition, observe_only, reason";

/// Reads a row selected with [`SUMMARY_COLS`] (by column name, so a query
/// may add columns of its own before or after them).
pub(super) fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageSummary> {
    let (verdict, tags, reason): (Option<String>, Option<String>, Option<String>) = (r.get("verdict")?, r.get("tags")?, r.get("reason")?);
    let category = crate::scan::category::Category::of(verdict.as_deref(), tags.as_deref(), reason.as_deref()).map(|c| c.label());
    Ok(MessageSummary {
        id: r.get("id")?,
        first_seen: r.get("first_seen")?,
        account: r.get("account")?,
        mailbox: r.get("mailbox")?,
        from: r.get("from_addr")?,
        subject: r.get("subject")?,
        verdict,
        score: r.get("score")?,
        tags,
        status: r.get("status")?,
        location: r.get("location_mailbox")?,
        quarantined: r.get("quarantined")?,
        disposition: r.get("disposition")?,
        observe_only: r.get("observe_only")?,
        category,
    })
}

impl Store {
    /// One page of messages, newest first.
    pub async fn list_messages(&self, f: &MessageFilter) -> Result<Vec<MessageSummary>> {
        let f = f.clone();
        self.call(move |db, _| {
            let q = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(|q| {
                let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                format!("%{escaped}%")
            });
            // An unknown category matches nothing rather than everything.
            let category = match f.category.as_deref().filter(|c| !c.is_empty()) {
                None => "1".to_string(),
                Some(c) => crate::scan::category::sql_condition(c).unwrap_or_else(|| "0".into()),
            };
            // `known` rows are copies of mail already listed (a released
            // message coming back, a recognised one after a UIDVALIDITY
            // change): one message is one row.
            let sql = format!(
                "SELECT {SUMMARY_COLS} FROM messages
                 WHERE (?1 IS NULL OR verdict = ?1) AND (?2 IS NULL OR account = ?2)
                   AND (?3 IS NULL OR from_addr LIKE ?3 ESCAPE '\\' OR subject LIKE ?3 ESCAPE '\\')
                   AND (?4 = 0 OR quarantined = 1) AND id < ?5 AND status <> 'known' AND {category}
                 ORDER BY id DESC LIMIT ?6"
            );
            let mut st = db.prepare_cached(&sql)?;
            let rows = st.query_map(
                params![
                    f.verdict.as_deref().filter(|v| !v.is_empty()),
                    f.account.as_deref().filter(|v| !v.is_empty()),
                    q,
                    f.quarantined,
                    f.before.unwrap_or(i64::MAX),
                    f.limit.unwrap_or(50).clamp(1, 200)
                ],
                summary,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// One list line by id.
    pub async fn message_summary(&self, id: i64) -> Result<Option<MessageSummary>> {
        self.call(move |db, _| {
            let sql = format!("SELECT {SUMMARY_COLS} FROM messages WHERE id = ?1");
            Ok(db.query_row(&sql, params![id], summary).optional()?)
        })
        .await
    }

    /// Everything about one message, with its audit history.
    pub async fn message_detail(&self, id: i64) -> Result<Option<MessageDetail>> {
        let base = self.message_summary(id).await?;
        let Some(summary) = base else { return Ok(None) };
        let history = self.message_history(id).await?;
        self.call(move |db, _| {
            Ok(db
                .query_row(
                    "SELECT uidvalidity, uid, message_id, sha256, size, internal_date, reason, scan_json, eml_path,
                            COALESCE(
                              (SELECT last_error FROM intents WHERE message = ?1 AND state = 'pending'),
                              (SELECT detail FROM ops WHERE message = ?1 AND state = 'pending' AND detail IS NOT NULL
                               ORDER BY id DESC LIMIT 1))
                     FROM messages WHERE id = ?1",
                    params![id],
                    |r| {
                        Ok(MessageDetail {
                            summary: summary.clone(),
                            uidvalidity: r.get(0)?,
                            uid: r.get(1)?,
                            message_id: r.get(2)?,
                            sha256: r.get(3)?,
                            size: r.get(4)?,
                            internal_date: r.get(5)?,
                            reason: r.get(6)?,
                            scan_json: r.get(7)?,
                            eml_path: r.get(8)?,
                            history: history.clone(),
                            pending_note: r.get(9)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn message_history(&self, id: i64) -> Result<Vec<AuditRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT id, ts, actor, account, mailbox, uid, message, event, detail FROM audit
                 WHERE message = ?1 ORDER BY id DESC LIMIT 100",
            )?;
            let rows = st.query_map(params![id], super::audit::row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// One page of the audit log, newest first.
    pub async fn audit_page(
        &self,
        account: Option<&str>,
        event: Option<&str>,
        actor: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRow>> {
        let (a, e, who) = (
            account.filter(|s| !s.is_empty()).map(str::to_string),
            event.filter(|s| !s.is_empty()).map(str::to_string),
            actor.filter(|s| !s.is_empty()).map(|s| format!("{s}%")),
        );
        self.call(move |db, _| {
            let mut st = db.prepare_cached(
                "SELECT id, ts, actor, account, mailbox, uid, message, event, detail FROM audit
                 WHERE (?1 IS NULL OR account = ?1) AND (?2 IS NULL OR event = ?2) AND (?3 IS NULL OR actor LIKE ?3)
                   AND id < ?4 ORDER BY id DESC LIMIT ?5",
            )?;
            let rows = st.query_map(
                params![a, e, who, before.unwrap_or(i64::MAX), limit.clamp(1, 500)],
                super::audit::row,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Verdict counts per day since `since_day` (`YYYY-MM-DD`).
    pub async fn daily_counts(&self, since_day: &str) -> Result<Vec<DayCounts>> {
        let since = since_day.to_string();
        self.call(move |db, _| {
            let mut st = db.prepare(
                // Mail that was only observed, or released, is not "quarantined
                // today": it is not in quarantine.
                "SELECT substr(first_seen, 1, 10) AS day,
                        CASE WHEN verdict <> 'pass' AND observe_only = 1 THEN 'observed'
                             WHEN disposition = 'released' THEN 'released'
                             ELSE verdict END AS bucket,
                        COUNT(*) FROM messages
                 WHERE first_seen >= ?1 AND verdict IS NOT NULL GROUP BY day, bucket ORDER BY day",
            )?;
            let mut out: Vec<DayCounts> = Vec::new();
            let rows = st.query_map(params![since], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })?;
            for row in rows {
                let (day, verdict, n) = row?;
                if out.last().is_none_or(|d| d.day != day) {
                    out.push(DayCounts {
                        day: day.clone(),
                        ..Default::default()
                    });
                }
                if let Some(d) = out.last_mut() {
                    match verdict.as_str() {
                        "pass" => d.pass += n,
                        "flag" => d.flag += n,
                        "junk" => d.junk += n,
                        "quarantine" => d.quarantine += n,
                        "delete" => d.delete += n,
                        "observed" => d.observed += n,
                        "released" => d.released += n,
                        _ => {}
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Most frequent senders (`by_domain`: sender domains) since `since`.
    pub async fn top_senders(&self, since: &str, by_domain: bool, limit: u32) -> Result<Vec<Count>> {
        let since = since.to_string();
        self.call(move |db, _| {
            let key = if by_domain {
                "lower(substr(from_addr, instr(from_addr, '@') + 1))"
            } else {
                "lower(from_addr)"
            };
            let sql = format!(
                "SELECT {key} AS k, COUNT(*), SUM(verdict <> 'pass') FROM messages
                 WHERE first_seen >= ?1 AND from_addr IS NOT NULL AND from_addr <> '' AND status <> 'known'
                 GROUP BY k ORDER BY COUNT(*) DESC, k LIMIT ?2"
            );
            let mut st = db.prepare(&sql)?;
            let rows = st.query_map(params![since, limit], |r| {
                Ok(Count {
                    name: r.get(0)?,
                    total: r.get(1)?,
                    bad: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Messages currently in quarantine or hold.
    pub async fn quarantine_count(&self) -> Result<i64> {
        // Kept by triggers (migration 0005): counting the index per page view is too slow at scale.
        self.call(|db, _| Ok(db.query_row("SELECT value FROM counters WHERE name = 'quarantined'", [], |r| r.get(0))?))
            .await
    }

    /// Pending intents and ops, across accounts (a backlog the health page shows).
    pub async fn pending_work(&self) -> Result<(i64, i64)> {
        self.call(|db, _| {
            let i = db.query_row("SELECT COUNT(*) FROM intents WHERE state = 'pending'", [], |r| r.get(0))?;
            let o = db.query_row("SELECT COUNT(*) FROM ops WHERE state = 'pending'", [], |r| r.get(0))?;
            Ok((i, o))
        })
        .await
    }

    /// Whether the database answers (for health).
    pub async fn ping(&self) -> Result<()> {
        self.call(|db, _| Ok(db.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }
}

impl Store {
    /// Messages per verdict, all time (for metrics).
    pub async fn verdict_totals(&self) -> Result<Vec<(String, i64)>> {
        self.call(|db, _| {
            let mut st = db.prepare("SELECT verdict, COUNT(*) FROM messages WHERE verdict IS NOT NULL GROUP BY verdict")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}
