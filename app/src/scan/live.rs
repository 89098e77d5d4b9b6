//! A decider that can be replaced while mail flows: settings changed in the
//! dashboard build a new pipeline and swap it in; scans already running
//! finish on the pipeline they started with.

use super::{Decider, Pipeline, ScanError, ScanRequest};
use crate::domain::Decision;
use futures::future::BoxFuture;
use std::sync::{Arc, RwLock};

/// Swappable pipeline.
pub struct LiveDecider {
    current: RwLock<Arc<Pipeline>>,
}

impl LiveDecider {
    /// Starts with `p`.
    pub fn new(p: Pipeline) -> Self {
        Self {
            current: RwLock::new(Arc::new(p)),
        }
    }

    /// The pipeline new scans use.
    pub fn current(&self) -> Arc<Pipeline> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the pipeline for every later scan.
    pub fn swap(&self, p: Pipeline) {
        let p = Arc::new(p);
        match self.current.write() {
            Ok(mut g) => *g = p,
            Err(poisoned) => *poisoned.into_inner() = p,
        }
    }
}

impl Decider for LiveDecider {
    fn id(&self) -> &'static str {
        "pipeline"
    }

    fn decide<'a>(&'a self, req: ScanRequest<'a>) -> BoxFuture<'a, Result<Decision, ScanError>> {
        let p = self.current();
        let raw = req.raw.to_vec();
        Box::pin(async move { Ok(p.scan(raw).await) })
    }

    fn prepare<'a>(&'a self, raw: Arc<Vec<u8>>) -> BoxFuture<'a, super::Prepared> {
        let p = self.current();
        Box::pin(async move { super::Prepared::from_input(p.parse_shared(raw).await) })
    }

    fn decide_prepared<'a>(
        &'a self,
        account: &'a str,
        mailbox: &'a str,
        prepared: &'a super::Prepared,
    ) -> BoxFuture<'a, Result<Decision, ScanError>> {
        let p = self.current();
        Box::pin(async move { p.decide_prepared(account, mailbox, prepared).await })
    }
}
