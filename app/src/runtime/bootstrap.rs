//! The first-run bootstrap's runtime side (issue 17): one task per account
//! that asks for it, retried with a growing delay until it is done, and
//! its progress (with the lesson queue's) for the dashboard, `/health` and
//! `/metrics`. The lessons it queues are sent by the learning task.

use super::{Runtime, RuntimeError};
use crate::manager::Backoff;
use crate::store::{BootstrapProgress, LessonCounts};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often accounts are looked at for a bootstrap to start (an account
/// added in the dashboard starts its own within this).
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Learning as the dashboard and `/health` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LearningProgress {
    /// The lesson queue.
    pub lessons: LessonCounts,
    /// Each account's bootstrap.
    pub bootstrap: Vec<BootstrapProgress>,
}

impl Runtime {
    /// Bootstrap and lesson-queue progress.
    pub async fn learning_progress(&self) -> Result<LearningProgress, RuntimeError> {
        Ok(LearningProgress {
            lessons: self.store.lesson_counts().await?,
            bootstrap: self.store.bootstrap_progress().await?,
        })
    }

    /// Starts the bootstrap of every account with `learn_bootstrap` that
    /// has not finished it, and keeps looking for new such accounts.
    pub fn spawn_bootstrap(&self, cancel: CancellationToken) {
        let rt = self.clone();
        let running: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        tokio::spawn(async move {
            loop {
                match rt.store.accounts().await {
                    Ok(accounts) => {
                        for a in accounts {
                            let Some(cfg) = a.learn_bootstrap else { continue };
                            if !running.lock().unwrap_or_else(PoisonError::into_inner).insert(a.name.clone()) {
                                continue;
                            }
                            let (rt, cancel, running) = (rt.clone(), cancel.clone(), running.clone());
                            tokio::spawn(async move {
                                let t = &rt.settings.imap;
                                let mut backoff = Backoff::new(t.backoff_min, t.backoff_max);
                                loop {
                                    match rt.manager.bootstrap(&a, cfg, &cancel).await {
                                        Ok(_) => break,
                                        Err(e) => tracing::warn!(account = %a.name, error = %e, "bootstrap interrupted; resuming later"),
                                    }
                                    tokio::select! {
                                        _ = cancel.cancelled() => break,
                                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                                    }
                                }
                                // Done or cancelled: a finished one is not
                                // started again (it reads as done).
                                if cancel.is_cancelled() {
                                    running.lock().unwrap_or_else(PoisonError::into_inner).remove(&a.name);
                                }
                            });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list accounts for the bootstrap"),
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(LOOK_EVERY) => {}
                }
            }
        });
    }
}
