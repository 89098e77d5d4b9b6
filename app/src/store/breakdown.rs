//! The stats page's breakdowns, in the way of Rspamd's UI: why mail was
//! acted on (the categories of `scan::category`), per account, and the
//! false-positive rate as the operator's releases show it.

use super::views::Count;
use super::{Result, Store};
use crate::scan::category::{FILTERS, sql_condition};
use rusqlite::params;

/// Counts since a day.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Breakdown {
    /// Acted-on mail per category (label, messages), in menu order.
    pub by_category: Vec<(String, i64)>,
    /// Per account: messages, and of them not passed.
    pub by_account: Vec<Count>,
    /// Moved to quarantine or hold (not observe-only).
    pub acted: i64,
    /// Of those, released by an operator: each one a false positive.
    pub released: i64,
}

impl Breakdown {
    /// Released as a share of acted-on mail, in percent (`None` without any).
    pub fn false_positive_percent(&self) -> Option<f64> {
        (self.acted > 0).then(|| 100.0 * self.released as f64 / self.acted as f64)
    }
}

impl Store {
    /// The breakdowns of mail first seen on or after `since` (`YYYY-MM-DD`).
    pub async fn breakdown(&self, since: &str) -> Result<Breakdown> {
        let since = since.to_string();
        self.call(move |db, _| {
            let mut out = Breakdown::default();
            for (key, label) in FILTERS {
                // The conditions are built from constants only (never input).
                let Some(cond) = sql_condition(key) else { continue };
                let sql = format!("SELECT COUNT(*) FROM messages WHERE first_seen >= ?1 AND status <> 'known' AND {cond}");
                let n: i64 = db.query_row(&sql, params![since], |r| r.get(0))?;
                out.by_category.push((label.to_string(), n));
            }
            let mut st = db.prepare(
                "SELECT account, COUNT(*), SUM(verdict IS NOT NULL AND verdict <> 'pass') FROM messages
                 WHERE first_seen >= ?1 AND status <> 'known' GROUP BY account ORDER BY COUNT(*) DESC, account",
            )?;
            let rows = st.query_map(params![since], |r| {
                Ok(Count {
                    name: r.get(0)?,
                    total: r.get(1)?,
                    bad: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                })
            })?;
            out.by_account = rows.collect::<rusqlite::Result<_>>()?;
            (out.acted, out.released) = db.query_row(
                "SELECT COUNT(*), COALESCE(SUM(disposition = 'released'), 0) FROM messages
                 WHERE first_seen >= ?1 AND verdict IN ('quarantine', 'delete') AND observe_only = 0",
                params![since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(out)
        })
        .await
    }
}
