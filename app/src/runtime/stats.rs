//! The stats page's top tables (issue 22): engines, URL domains and
//! attachment types over the last days; the subjects the audit log names.

use super::{Runtime, RuntimeError};
use crate::store::TopStats;

impl Runtime {
    /// The top tables of the last `days` days (today included).
    pub async fn top_stats(&self, days: i64, limit: u32) -> Result<TopStats, RuntimeError> {
        let since = (self.clock.now() - chrono::Duration::days(days.clamp(1, 365) - 1))
            .format("%Y-%m-%d")
            .to_string();
        Ok(self.store.top_stats(&since, limit).await?)
    }
}

impl Runtime {
    /// Subjects of the messages the audit rows name, keyed by message id
    /// (as text, for the template).
    pub async fn audit_subjects(
        &self,
        rows: &[crate::store::AuditRow],
    ) -> Result<std::collections::BTreeMap<String, String>, RuntimeError> {
        let ids = rows.iter().filter_map(|r| r.message).collect();
        Ok(self
            .store
            .subjects_of(ids)
            .await?
            .into_iter()
            .map(|(id, s)| (id.to_string(), s))
            .collect())
    }
}
