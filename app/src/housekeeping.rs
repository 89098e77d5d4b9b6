//! Scheduling and file housekeeping for the daily maintenance run: when a
//! daily or weekly job is next due in local time, backup rotation, and the
//! sweep of EML files no message refers to.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The first moment strictly after `last` when the local clock of `tz`
/// shows `at` (on `weekday`, when given). A time skipped by a DST jump
/// runs at the first valid instant after it; a repeated one runs once.
pub fn next_after<Tz: TimeZone>(tz: &Tz, last: DateTime<Utc>, at: NaiveTime, weekday: Option<Weekday>) -> DateTime<Utc> {
    let mut day = last.with_timezone(tz).date_naive();
    for _ in 0..16 {
        if weekday.is_none_or(|w| day.weekday() == w) {
            let naive = day.and_time(at);
            let local = tz.from_local_datetime(&naive).earliest().or_else(|| {
                // In a DST gap: the first valid minute after it.
                (1..=180).find_map(|m| tz.from_local_datetime(&(naive + Duration::minutes(m))).earliest())
            });
            if let Some(t) = local.map(|t| t.with_timezone(&Utc))
                && t > last
            {
                return t;
            }
        }
        day = day.succ_opt().unwrap_or(day);
    }
    last + Duration::days(1)
}

/// Backup file name for a run at `at`: sorts by time.
pub fn backup_name(at: DateTime<Utc>) -> String {
    format!("postern-{}.db", at.format("%Y%m%dT%H%M%SZ"))
}

/// Removes the oldest backups in `dir` beyond the newest `keep`; returns
/// what is left. Only files Postern names are touched.
pub fn rotate_backups(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut all: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("postern-") && n.ends_with(".db"))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    all.sort();
    let cut = all.len().saturating_sub(keep);
    for p in all.drain(..cut) {
        std::fs::remove_file(&p)?;
    }
    Ok(all)
}

/// Removes EML copies (and interrupted `.tmp` writes) under `eml_dir` that
/// no message refers to and that are older than `grace` at `now`. The grace
/// period covers a copy written just before its decision is recorded.
pub fn sweep_orphans(eml_dir: &Path, referenced: &HashSet<PathBuf>, now: DateTime<Utc>, grace: Duration) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let accounts = match std::fs::read_dir(eml_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for acct in accounts.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
        for f in std::fs::read_dir(acct.path())?.filter_map(Result::ok) {
            let p = f.path();
            let name = f.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(".eml") || (name.starts_with('.') && name.ends_with(".tmp"));
            if !ours || referenced.contains(&p) {
                continue;
            }
            let modified: DateTime<Utc> = f.metadata()?.modified().unwrap_or(SystemTime::UNIX_EPOCH).into();
            if now - modified >= grace {
                std::fs::remove_file(&p)?;
                removed.push(p);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_and_weekly_runs_follow_the_local_clock() {
        let at = NaiveTime::from_hms_opt(3, 0, 0).unwrap();
        let paris = FixedOffset::east_opt(3600).unwrap();
        // 01:30 UTC is 02:30 in UTC+1: today's 03:00 local is still ahead.
        assert_eq!(
            next_after(&paris, utc("2026-11-22T01:30:00Z"), at, None),
            utc("2026-11-22T02:00:00Z")
        );
        // Exactly at the run time: the next one is tomorrow.
        assert_eq!(
            next_after(&paris, utc("2026-11-22T02:00:00Z"), at, None),
            utc("2026-11-23T02:00:00Z")
        );
        // 2026-11-22 is a Sunday: the weekly Monday run is the next day.
        assert_eq!(
            next_after(&Utc, utc("2026-11-22T12:00:00Z"), at, Some(Weekday::Mon)),
            utc("2026-11-23T03:00:00Z")
        );
        assert_eq!(
            next_after(&Utc, utc("2026-11-23T03:00:00Z"), at, Some(Weekday::Mon)),
            utc("2026-11-30T03:00:00Z")
        );
    }

    #[test]
    fn rotation_keeps_the_newest_and_only_touches_backups() {
        let d = tempfile::tempdir().unwrap();
        let start = utc("2026-11-01T03:00:00Z");
        for i in 0..10 {
            std::fs::write(d.path().join(backup_name(start + Duration::days(i))), b"x").unwrap();
        }
        std::fs::write(d.path().join("notes.txt"), b"mine").unwrap();
        let left = rotate_backups(d.path(), 7).unwrap();
        assert_eq!(left.len(), 7);
        assert!(left[0].ends_with("postern-20261104T030000Z.db"), "{left:?}");
        assert!(d.path().join("notes.txt").is_file());
        assert_eq!(rotate_backups(&d.path().join("missing"), 7).unwrap().len(), 0);
    }

    #[test]
    fn orphans_go_after_the_grace_period_and_referenced_copies_stay() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("alice");
        std::fs::create_dir_all(&a).unwrap();
        for n in ["kept.eml", "orphan.eml", ".half.tmp", "README"] {
            std::fs::write(a.join(n), b"x").unwrap();
        }
        let refs: HashSet<PathBuf> = [a.join("kept.eml")].into_iter().collect();
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        assert!(
            sweep_orphans(d.path(), &refs, now, Duration::hours(24)).unwrap().is_empty(),
            "too young"
        );
        let gone = sweep_orphans(d.path(), &refs, now + Duration::hours(25), Duration::hours(24)).unwrap();
        assert_eq!(gone.len(), 2, "{gone:?}");
        assert!(a.join("kept.eml").is_file() && a.join("README").is_file());
        assert!(!a.join("orphan.eml").exists() && !a.join(".half.tmp").exists());
    }
}
