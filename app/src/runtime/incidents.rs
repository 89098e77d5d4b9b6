//! Incidents (issue 20): the verbs the dashboard calls to list incidents,
//! read one with its timeline, and move it between open, acknowledged and
//! closed. Grouping itself happens where events are stored (store layer),
//! so an incident is complete whatever order attack and mail arrive in.

use super::{Runtime, RuntimeError};
pub use crate::store::{INCIDENT_STATUSES, IncidentItem, IncidentRow};

/// Longest note kept with a status change.
const MAX_NOTE: usize = 500;

impl Runtime {
    /// Incidents, latest activity first, optionally of one status.
    pub async fn incidents(&self, status: Option<&str>, limit: u32) -> Result<Vec<IncidentRow>, RuntimeError> {
        let status = match status.filter(|s| !s.is_empty()) {
            Some(s) if !INCIDENT_STATUSES.contains(&s) => return Err(RuntimeError::Invalid(format!("unknown status {s:?}"))),
            other => other.map(str::to_string),
        };
        Ok(self.store.incidents(status, limit.clamp(1, 1000)).await?)
    }

    /// One incident and its timeline; `None` when there is no such incident.
    pub async fn incident(&self, id: i64) -> Result<Option<(IncidentRow, Vec<IncidentItem>)>, RuntimeError> {
        Ok(self.store.incident(id).await?)
    }

    /// Sets an incident's status (audited, on its timeline with `actor`).
    /// `Ok(false)`: no such incident.
    pub async fn set_incident_status(&self, id: i64, status: &str, actor: &str, note: &str) -> Result<bool, RuntimeError> {
        if !INCIDENT_STATUSES.contains(&status) {
            return Err(RuntimeError::Invalid(format!(
                "unknown status {status:?}: use {}",
                INCIDENT_STATUSES.join(", ")
            )));
        }
        let mut end = note.len().min(MAX_NOTE);
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        Ok(self.store.set_incident_status(id, status, actor, &note[..end]).await?)
    }
}
