//! What the daily maintenance run asks of the database: EML retention by
//! class, held mail due for expunge, integrity, backups and job state.

use super::{Result, Store};
use rusqlite::{OptionalExtension, params};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Cut-off times (stored-time strings): copies of mail first seen before
/// them are past retention.
#[derive(Debug, Clone)]
pub struct RetentionCutoffs {
    /// Mail that ended clean (released, re-checked clean, never moved).
    pub clean: String,
    /// Mail still in quarantine.
    pub quarantine: String,
    /// Held ("deleted") mail, in the hold folder or expunged from it.
    pub held: String,
}

/// EML copies dropped by one pruning pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Copies forgotten, by class: (clean, quarantine, held).
    pub by_class: (usize, usize, usize),
    /// Files no other message refers to, safe to remove.
    pub files: Vec<PathBuf>,
}

// Which retention class a stored copy falls in. Held comes first: a message
// Postern decided to delete, or the operator deleted, is "held" wherever it is.
const CLASS: &str = "CASE
    WHEN verdict = 'delete' OR disposition = 'deleted' THEN 'held'
    WHEN quarantined = 1 THEN 'quarantine'
    ELSE 'clean' END";

impl Store {
    /// Forgets EML copies past their class's retention and returns the files
    /// that nothing refers to any more. The rows are updated first, so a
    /// crash before the files go leaves orphans (swept later), never a
    /// reference to a missing file.
    pub async fn prune_eml(&self, cut: RetentionCutoffs) -> Result<Pruned> {
        self.call(move |db, _| {
            let tx = db.transaction()?;
            let due: Vec<(i64, String, String)> = {
                let mut st = tx.prepare(&format!(
                    "SELECT id, eml_path, {CLASS} AS class FROM messages WHERE eml_path IS NOT NULL
                     AND first_seen < CASE {CLASS} WHEN 'held' THEN ?3 WHEN 'quarantine' THEN ?2 ELSE ?1 END"
                ))?;
                let rows = st.query_map(params![cut.clean, cut.quarantine, cut.held], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut out = Pruned::default();
            for (id, _, class) in &due {
                tx.execute("UPDATE messages SET eml_path = NULL WHERE id = ?1", params![id])?;
                match class.as_str() {
                    "held" => out.by_class.2 += 1,
                    "quarantine" => out.by_class.1 += 1,
                    _ => out.by_class.0 += 1,
                }
            }
            let paths: HashSet<String> = due.into_iter().map(|(_, p, _)| p).collect();
            for p in paths {
                let still: Option<i64> = tx
                    .query_row("SELECT id FROM messages WHERE eml_path = ?1 LIMIT 1", params![p], |r| r.get(0))
                    .optional()?;
                if still.is_none() {
                    out.files.push(PathBuf::from(p));
                }
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Every EML path a message row refers to.
    pub async fn eml_references(&self) -> Result<HashSet<PathBuf>> {
        self.call(|db, _| {
            let mut st = db.prepare("SELECT DISTINCT eml_path FROM messages WHERE eml_path IS NOT NULL")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.map(|r| r.map(PathBuf::from)).collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// Held mail still in the hold folder, first seen before `cutoff`, with
    /// no operator action pending: (message id, account).
    pub async fn held_due(&self, cutoff: &str) -> Result<Vec<(i64, String)>> {
        let c = cutoff.to_string();
        self.call(move |db, _| {
            let mut st = db.prepare(
                "SELECT m.id, m.account FROM messages m
                 WHERE m.quarantined = 1 AND m.verdict = 'delete' AND m.first_seen < ?1
                   AND NOT EXISTS (SELECT 1 FROM ops o WHERE o.message = m.id AND o.state = 'pending')
                 ORDER BY m.id",
            )?;
            let rows = st.query_map(params![c], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// `PRAGMA integrity_check`: empty when the database is sound, else
    /// SQLite's list of problems.
    pub async fn integrity_problems(&self) -> Result<Vec<String>> {
        self.call(|db, _| {
            let mut st = db.prepare("PRAGMA integrity_check")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            let all: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
            Ok(if all.len() == 1 && all[0] == "ok" { Vec::new() } else { all })
        })
        .await
    }

    /// A consistent copy of the live database at `dest` (`VACUUM INTO`),
    /// readable by the owner only.
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        let d = dest.to_path_buf();
        self.call(move |db, _| {
            if let Some(dir) = d.parent() {
                std::fs::create_dir_all(dir)?;
                set_mode(dir, 0o700)?;
            }
            let tmp = d.with_extension("partial");
            let _ = std::fs::remove_file(&tmp);
            db.execute("VACUUM INTO ?1", params![tmp.to_string_lossy()])?;
            set_mode(&tmp, 0o600)?;
            std::fs::rename(&tmp, &d)?;
            Ok(())
        })
        .await
    }

    /// When `job` last ran (stored-time string).
    pub async fn last_run(&self, job: &str) -> Result<Option<String>> {
        let j = job.to_string();
        self.call(move |db, _| {
            Ok(db
                .query_row("SELECT last_run FROM schedule_state WHERE job = ?1", params![j], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// The report stored with `job`'s last run.
    pub async fn last_report(&self, job: &str) -> Result<Option<String>> {
        let j = job.to_string();
        self.call(move |db, _| {
            Ok(db
                .query_row("SELECT report FROM schedule_state WHERE job = ?1", params![j], |r| r.get(0))
                .optional()?
                .flatten())
        })
        .await
    }

    /// Records that `job` ran at `at`; a `report` replaces the stored one.
    pub async fn set_last_run(&self, job: &str, at: &str, report: Option<&str>) -> Result<()> {
        let (j, a, r) = (job.to_string(), at.to_string(), report.map(str::to_string));
        self.call(move |db, _| {
            db.execute(
                "INSERT INTO schedule_state (job, last_run, report) VALUES (?1, ?2, ?3)
                 ON CONFLICT (job) DO UPDATE SET last_run = excluded.last_run,
                   report = COALESCE(excluded.report, schedule_state.report)",
                params![j, a, r],
            )?;
            Ok(())
        })
        .await
    }
}

fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}
