//! Crash-test hooks. When `POSTERN_TEST_FAILPOINT` names a point, the process
//! logs and then stalls there forever, so a test can SIGKILL it at exactly
//! that moment and prove recovery. Unset in production; costs one string
//! comparison per hit.

use std::sync::OnceLock;

/// After the decision and intent are durable, before the action runs.
pub const AFTER_DECISION: &str = "after-decision";
/// After the server executed a move, before the store recorded it.
pub const AFTER_MOVE: &str = "after-move";
/// After a COPY-based move's COPY, before the source copy is removed.
pub const AFTER_COPY: &str = "after-copy";

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var("POSTERN_TEST_FAILPOINT").ok().filter(|s| !s.is_empty()))
        .as_deref()
}

/// Stalls forever if `name` is the armed failpoint.
pub async fn hit(name: &str) {
    if armed() == Some(name) {
        tracing::error!(failpoint = name, "failpoint reached; stalling until killed");
        std::future::pending::<()>().await;
    }
}
