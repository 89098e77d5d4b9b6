//! Versioned schema migrations tracked in `PRAGMA user_version`; each step
//! runs in its own transaction, and a database from a newer release is
//! refused rather than misread.

use super::{Result, StoreError};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_scan_reports.sql"),
    include_str!("../../migrations/0003_dashboard.sql"),
    include_str!("../../migrations/0004_intel.sql"),
    include_str!("../../migrations/0005_counters.sql"),
    include_str!("../../migrations/0006_ops.sql"),
    include_str!("../../migrations/0007_oauth.sql"),
    include_str!("../../migrations/0008_learning.sql"),
    include_str!("../../migrations/0009_milter.sql"),
    include_str!("../../migrations/0010_logwatch.sql"),
    include_str!("../../migrations/0011_users.sql"),
    include_str!("../../migrations/0012_reports.sql"),
    include_str!("../../migrations/0013_bootstrap.sql"),
    include_str!("../../migrations/0014_console.sql"),
    include_str!("../../migrations/0015_incidents.sql"),
    include_str!("../../migrations/0016_purge.sql"),
];

pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::TooNew { found: current, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        migrate(&mut c).unwrap();
        let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        c.pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(migrate(&mut c), Err(StoreError::TooNew { found: 99, .. })));
    }
}
