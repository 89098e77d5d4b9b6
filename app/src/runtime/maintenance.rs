//! The daily maintenance run: EML retention by class, expunge of held
//! mail past its time (through the account's runner, with a copy kept),
//! cache sweeps, an integrity check, a rotated `VACUUM INTO` backup and the
//! orphaned-EML sweep. It runs at `POSTERN_MAINTENANCE_AT` local time on
//! the injected clock, and writes one audit row per run.

use super::{Runtime, RuntimeError};
use crate::housekeeping;
use crate::notify::{Notice, NoticeKind};
use crate::store::{AuditEntry, OpKind, RetentionCutoffs, StoreError};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;

/// Job name in `schedule_state`.
pub(super) const JOB: &str = "maintenance";

/// What one maintenance run did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct MaintenanceReport {
    /// When it ran (RFC 3339).
    pub at: String,
    /// EML copies dropped: clean, quarantine, held.
    pub eml_pruned: (usize, usize, usize),
    /// Held messages queued for expunge from the hold folder.
    pub hold_expunges_queued: usize,
    /// Reputation cache rows, sessions and digest links swept.
    pub swept: (usize, usize, usize),
    /// `PRAGMA integrity_check` problems (empty: sound).
    pub integrity: Vec<String>,
    /// The backup written, if any.
    pub backup: Option<String>,
    /// Backups kept after rotation.
    pub backups: usize,
    /// Orphaned EML files removed.
    pub orphans_removed: usize,
    /// Steps that failed.
    pub errors: Vec<String>,
}

impl MaintenanceReport {
    /// Whether every step worked and the database is sound.
    pub fn ok(&self) -> bool {
        self.integrity.is_empty() && self.errors.is_empty()
    }
}

/// A time as the store writes it (RFC 3339, milliseconds, UTC), so stored
/// times compare as strings.
pub(super) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Runtime {
    /// Runs maintenance now. Every step runs even when an earlier one
    /// failed; the report says what failed.
    pub async fn run_maintenance(&self) -> Result<MaintenanceReport, RuntimeError> {
        let bg = self.background.current();
        let m = &bg.settings.maintenance;
        let now = self.clock.now();
        let days = |d: u32| stamp(now - Duration::days(i64::from(d)));
        let mut r = MaintenanceReport {
            at: stamp(now),
            ..Default::default()
        };
        let fail = |r: &mut MaintenanceReport, step: &str, e: String| {
            tracing::error!(step, error = %e, "maintenance step failed");
            r.errors.push(format!("{step}: {e}"));
        };

        match self
            .store
            .prune_eml(RetentionCutoffs {
                clean: days(m.clean_days),
                quarantine: days(m.quarantine_days),
                held: days(m.held_days),
            })
            .await
        {
            Ok(p) => {
                r.eml_pruned = p.by_class;
                for f in p.files {
                    if let Err(e) = std::fs::remove_file(&f)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        fail(&mut r, "eml retention", format!("{}: {e}", f.display()));
                    }
                }
            }
            Err(e) => fail(&mut r, "eml retention", e.to_string()),
        }

        match self.store.held_due(&days(m.hold_expunge_days)).await {
            Ok(due) => {
                let mut accounts = BTreeSet::new();
                let shadow = self.shadow_accounts().await?;
                // An account switched to shadow keeps its held mail: the
                // expunge is an action like any other.
                for (id, account) in due.into_iter().filter(|(_, a)| !shadow.contains(a)) {
                    match self.store.request_op(id, OpKind::Delete, "postern:maintenance").await {
                        Ok(Ok(_)) => {
                            r.hold_expunges_queued += 1;
                            accounts.insert(account);
                        }
                        Ok(Err(why)) => tracing::info!(message = id, ?why, "held message not expunged"),
                        Err(e) => fail(&mut r, "hold expunge", e.to_string()),
                    }
                }
                for a in accounts {
                    self.manager.nudge(&a);
                }
            }
            Err(e) => fail(&mut r, "hold expunge", e.to_string()),
        }

        let web = &self.settings.web;
        let ago = |d: std::time::Duration| stamp(now - Duration::from_std(d).unwrap_or(Duration::zero()));
        let swept = async {
            Ok::<_, StoreError>((
                self.store.rep_sweep(now.timestamp()).await?,
                self.store.prune_sessions(&ago(web.session_idle), &ago(web.session_max)).await?,
                self.store.sweep_digest_links(&days(1)).await?,
            ))
        };
        match swept.await {
            Ok(s) => r.swept = s,
            Err(e) => fail(&mut r, "cache sweep", e.to_string()),
        }

        match self.store.integrity_problems().await {
            Ok(p) => r.integrity = p,
            Err(e) => r.integrity = vec![format!("integrity check could not run: {e}")],
        }
        // A damaged database must not rotate the last good backups away.
        if m.backup_keep > 0 && r.integrity.is_empty() {
            let dest = m.backup_dir.join(housekeeping::backup_name(now));
            match self.store.backup_to(&dest).await {
                Ok(()) => r.backup = Some(dest.display().to_string()),
                Err(e) => fail(&mut r, "backup", e.to_string()),
            }
            match housekeeping::rotate_backups(&m.backup_dir, m.backup_keep as usize) {
                Ok(left) => r.backups = left.len(),
                Err(e) => fail(&mut r, "backup rotation", e.to_string()),
            }
        }

        match self.store.eml_references().await {
            Ok(refs) => {
                let dir = self.settings.eml_dir.clone();
                let swept = tokio::task::spawn_blocking(move || housekeeping::sweep_orphans(&dir, &refs, now, Duration::hours(24))).await;
                match swept {
                    Ok(Ok(gone)) => r.orphans_removed = gone.len(),
                    Ok(Err(e)) => fail(&mut r, "orphan sweep", e.to_string()),
                    Err(e) => fail(&mut r, "orphan sweep", e.to_string()),
                }
            }
            Err(e) => fail(&mut r, "orphan sweep", e.to_string()),
        }

        self.finish_maintenance(&r).await?;
        Ok(r)
    }

    async fn finish_maintenance(&self, r: &MaintenanceReport) -> Result<(), RuntimeError> {
        let detail = format!(
            "{}: eml pruned clean/quarantine/held {}/{}/{}; hold expunges queued {}; swept cache/sessions/links {}/{}/{}; integrity {}; backup {} ({} kept); orphans removed {}{}",
            if r.ok() { "ok" } else { "FAILED" },
            r.eml_pruned.0,
            r.eml_pruned.1,
            r.eml_pruned.2,
            r.hold_expunges_queued,
            r.swept.0,
            r.swept.1,
            r.swept.2,
            if r.integrity.is_empty() {
                "ok".to_string()
            } else {
                r.integrity.join("; ")
            },
            r.backup.as_deref().unwrap_or("none"),
            r.backups,
            r.orphans_removed,
            if r.errors.is_empty() {
                String::new()
            } else {
                format!("; errors: {}", r.errors.join("; "))
            },
        );
        self.store
            .audit(AuditEntry {
                actor: "postern:maintenance".into(),
                event: "maintenance".into(),
                detail: detail.clone(),
                ..Default::default()
            })
            .await?;
        let json = serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store.set_last_run(JOB, &r.at, Some(&json)).await?;
        if let Ok(mut last) = self.background.last_maintenance.lock() {
            *last = Some(r.clone());
        }
        if r.ok() {
            tracing::info!(%detail, "maintenance finished");
        } else {
            tracing::error!(%detail, "maintenance found problems");
            if let Some(n) = &self.background.notifier() {
                n.alert(
                    "maintenance",
                    Notice::plain(NoticeKind::Maintenance, "Postern maintenance found problems".into(), detail),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Loads the last run's report at start, so `/health` and `/metrics`
    /// do not forget it across a restart.
    pub async fn load_maintenance_report(&self) -> Result<(), RuntimeError> {
        if let Some(json) = self.store.last_report(JOB).await? {
            match serde_json::from_str::<MaintenanceReport>(&json) {
                Ok(r) => {
                    if let Ok(mut last) = self.background.last_maintenance.lock() {
                        *last = Some(r);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "stored maintenance report unreadable; ignored"),
            }
        }
        Ok(())
    }

    /// The last maintenance run's report, for `/metrics` and `/health`.
    pub fn last_maintenance(&self) -> Option<MaintenanceReport> {
        self.background.last_maintenance.lock().ok().and_then(|l| l.clone())
    }
}
