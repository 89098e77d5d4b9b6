//! The dashboard's allow and block lists: every change is stored (and
//! audited by the store) and then applied by rebuilding the pipeline.

use super::{Runtime, RuntimeError};

impl Runtime {
    /// Adds one entry and applies it; `None` when it was already listed
    /// (then nothing changes).
    pub async fn add_list_entry(&self, kind: &str, pattern: &str, reason: &str, actor: &str) -> Result<Option<i64>, RuntimeError> {
        let id = self.store.add_list_entry(kind, pattern, reason, actor).await?;
        if id.is_some() {
            self.rebuild().await?;
        }
        Ok(id)
    }

    /// Adds (pattern, reason) entries in order and applies them once;
    /// returns (added, already listed).
    pub async fn add_list_entries(&self, kind: &str, entries: &[(String, String)], actor: &str) -> Result<(u32, u32), RuntimeError> {
        let (mut added, mut duplicates) = (0, 0);
        for (p, reason) in entries {
            match self.store.add_list_entry(kind, p, reason, actor).await? {
                Some(_) => added += 1,
                None => duplicates += 1,
            }
        }
        if added > 0 {
            self.rebuild().await?;
        }
        Ok((added, duplicates))
    }

    /// Removes an entry and applies that; false when there was none.
    pub async fn remove_list_entry(&self, id: i64, actor: &str) -> Result<bool, RuntimeError> {
        if !self.store.delete_list_entry(id, actor).await? {
            return Ok(false);
        }
        self.rebuild().await?;
        Ok(true)
    }
}
