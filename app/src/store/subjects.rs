//! Subjects of a page of messages, by id: the audit log names the message
//! each row is about (issue 22) without widening every audit query.

use super::{Result, Store};
use rusqlite::params_from_iter;

/// Ids asked for at most at once (one audit page).
const MAX_IDS: usize = 500;

impl Store {
    /// `(id, subject)` of those of `ids` that exist; a missing subject is "".
    pub async fn subjects_of(&self, ids: Vec<i64>) -> Result<Vec<(i64, String)>> {
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(MAX_IDS);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.call(move |db, _| {
            let marks = vec!["?"; ids.len()].join(",");
            let mut st = db.prepare(&format!("SELECT id, COALESCE(subject, '') FROM messages WHERE id IN ({marks})"))?;
            let rows = st.query_map(params_from_iter(ids.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}
