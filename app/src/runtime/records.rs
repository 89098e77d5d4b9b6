//! The records the dashboard reads and sends back: rows of message lists,
//! the audit log, stats and lists, and the store's error. They are plain
//! data defined next to the queries that fill them; the web layer names
//! them through here, so that it depends on the runtime alone (the
//! layering test, app/tests/layering.rs, holds it to that).

pub use crate::domain::{AuditEntry, OpKind};
pub use crate::store::{
    AuditRow, Count, DayCounts, IndicatorRow, ListEntry, MessageDetail, MessageFilter, MessageSummary, SightingRow, StoreError, TopStats,
};
