//! Issue 22, item 4: the dashboard's cards and the menu's quarantine count,
//! pushed over SSE after every change so they never go stale.

use super::{Runtime, RuntimeError};

/// Today's counts and what is in quarantine now.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LiveCounts {
    /// Passed today.
    pub pass: i64,
    /// Flagged today.
    pub flag: i64,
    /// Quarantined today (and still there).
    pub quarantine: i64,
    /// Held today.
    pub delete: i64,
    /// In quarantine now, any day.
    pub in_quarantine: i64,
}

impl Runtime {
    /// The numbers on the dashboard's cards and in the menu.
    pub async fn live_counts(&self) -> Result<LiveCounts, RuntimeError> {
        let today = self.clock.now().format("%Y-%m-%d").to_string();
        let c = self.store.daily_counts(&today).await?.into_iter().next().unwrap_or_default();
        Ok(LiveCounts {
            pass: c.pass,
            flag: c.flag,
            quarantine: c.quarantine,
            delete: c.delete,
            in_quarantine: self.store.quarantine_count().await?,
        })
    }
}

impl Runtime {
    /// One message's list row, as the live list shows it.
    pub async fn message_row(&self, id: i64) -> Result<Option<super::records::MessageSummary>, RuntimeError> {
        Ok(self.store.message_summary(id).await?)
    }
}
