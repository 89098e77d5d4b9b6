//! Read models the dashboard shows: message lists, the audit log, counts
//! and lists. Most are thin views over the store; they live here so the
//! web layer asks the runtime for what an operator looks at rather than
//! reading tables itself (tests/layering.rs holds it to that).

use super::Runtime;
use crate::config::PolicyConfig;
use crate::store::{
    AuditRow, Breakdown, Count, DayCounts, IndicatorRow, ListEntry, MessageDetail, MessageFilter, MessageSummary, SightingRow, StoreError,
};

impl Runtime {
    /// One page of the message list (dashboard and quarantine).
    pub async fn messages(&self, f: &MessageFilter) -> Result<Vec<MessageSummary>, StoreError> {
        self.store.list_messages(f).await
    }

    /// A message with its scan report and history.
    pub async fn message_detail(&self, id: i64) -> Result<Option<MessageDetail>, StoreError> {
        self.store.message_detail(id).await
    }

    /// A message's list row.
    pub async fn message_summary(&self, id: i64) -> Result<Option<MessageSummary>, StoreError> {
        self.store.message_summary(id).await
    }

    /// One page of the audit log, newest first, before `before`.
    pub async fn audit_page(
        &self,
        account: Option<&str>,
        event: Option<&str>,
        actor: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.store.audit_page(account, event, actor, before, limit).await
    }

    /// Verdict counts per day since `since` (`YYYY-MM-DD`).
    pub async fn daily_counts(&self, since: &str) -> Result<Vec<DayCounts>, StoreError> {
        self.store.daily_counts(since).await
    }

    /// Today's verdict counts (zeros, dated today, before the first message).
    pub async fn today_counts(&self) -> Result<DayCounts, StoreError> {
        let today = self.clock.now().format("%Y-%m-%d").to_string();
        let counts = self.store.daily_counts(&today).await?.into_iter().next();
        Ok(counts.unwrap_or(DayCounts {
            day: today,
            ..Default::default()
        }))
    }

    /// Messages moved away and not yet released.
    pub async fn quarantine_count(&self) -> Result<i64, StoreError> {
        self.store.quarantine_count().await
    }

    /// Actions waiting to run: (automatic, operator).
    pub async fn pending_work(&self) -> Result<(i64, i64), StoreError> {
        self.store.pending_work().await
    }

    /// Messages ever scanned, by verdict.
    pub async fn verdict_totals(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.store.verdict_totals().await
    }

    /// The most frequent senders (or their domains) since `since`.
    pub async fn top_senders(&self, since: &str, by_domain: bool, limit: u32) -> Result<Vec<Count>, StoreError> {
        self.store.top_senders(since, by_domain, limit).await
    }

    /// Tags, verdicts and accounts since `since`.
    pub async fn breakdown(&self, since: &str) -> Result<Breakdown, StoreError> {
        self.store.breakdown(since).await
    }

    /// The dashboard's allow and block entries.
    pub async fn list_entries(&self) -> Result<Vec<ListEntry>, StoreError> {
        self.store.list_entries().await
    }

    /// The allow and block lists from config.yaml (read-only here).
    pub fn config_lists(&self) -> &PolicyConfig {
        &self.file_lists
    }

    /// Names of all accounts, running or not.
    pub async fn account_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.store.accounts().await?.into_iter().map(|a| a.name).collect())
    }

    /// A page of indicators of compromise.
    pub async fn indicators(&self, limit: u32, offset: u32) -> Result<Vec<IndicatorRow>, StoreError> {
        self.store.list_indicators(limit, offset).await
    }

    /// One indicator.
    pub async fn indicator(&self, id: i64) -> Result<Option<IndicatorRow>, StoreError> {
        self.store.indicator(id).await
    }

    /// Where an indicator was seen.
    pub async fn sightings(&self, indicator: i64, limit: u32) -> Result<Vec<SightingRow>, StoreError> {
        self.store.sightings(indicator, limit).await
    }

    /// Removes an indicator (audited); false when there was none.
    pub async fn delete_indicator(&self, id: i64, actor: &str) -> Result<bool, StoreError> {
        self.store.delete_indicator(id, actor).await
    }
}
