//! Runs every enabled scanner concurrently over one parsed input, each
//! under its own enforced deadline, and hands the reports to the policy.

use super::{Decider, FailureMode, InputOptions, Policy, ScanError, ScanInput, ScanRequest, Scanner};
use crate::domain::{Decision, ScannerReport};
use futures::future::{BoxFuture, join_all};
use std::sync::Arc;
use std::time::Instant;

/// How long one scanner's health check may take.
pub const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// The scanning pipeline.
pub struct Pipeline {
    scanners: Vec<Arc<dyn Scanner>>,
    disabled: Vec<super::scanners::Disabled>,
    policy: Arc<Policy>,
    opts: InputOptions,
}

impl Pipeline {
    /// A pipeline over `scanners`.
    pub fn new(scanners: Vec<Arc<dyn Scanner>>, policy: Policy, opts: InputOptions) -> Self {
        Self {
            scanners,
            disabled: Vec::new(),
            policy: Arc::new(policy),
            opts,
        }
    }

    /// Records the scanners left out, and why.
    pub fn with_disabled(mut self, disabled: Vec<super::scanners::Disabled>) -> Self {
        self.disabled = disabled;
        self
    }

    /// Adds scanners built elsewhere (threat intelligence), and the ones
    /// left out there.
    pub fn with_scanners(mut self, more: Vec<Arc<dyn Scanner>>, disabled: Vec<super::scanners::Disabled>) -> Self {
        self.scanners.extend(more);
        self.disabled.extend(disabled);
        self
    }

    /// Scanners that are not running, with the reason.
    pub fn disabled(&self) -> &[super::scanners::Disabled] {
        &self.disabled
    }

    /// The scanners, in order.
    pub fn scanners(&self) -> &[Arc<dyn Scanner>] {
        &self.scanners
    }

    /// Asks every scanner's health check concurrently, each bounded by
    /// [`HEALTH_TIMEOUT`]: (id, fails closed, detail or error).
    pub async fn probe(&self) -> Vec<(&'static str, bool, Result<String, String>)> {
        let checks = self.scanners.iter().map(|s| async move {
            let r = match tokio::time::timeout(HEALTH_TIMEOUT, s.health()).await {
                Ok(Ok(d)) => Ok(d),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("health check timed out".to_string()),
            };
            (s.id(), s.failure_mode() == FailureMode::Closed, r)
        });
        join_all(checks).await
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Parses (on the blocking pool: it is CPU-bound) and scans `raw`.
    pub async fn scan(&self, raw: Vec<u8>) -> Decision {
        let opts = self.opts.clone();
        let input = match tokio::task::spawn_blocking(move || ScanInput::parse(raw, &opts)).await {
            Ok(i) => i,
            Err(e) => {
                // A panic inside the parser must not pass the message.
                let mut i = ScanInput {
                    unparseable: true,
                    ..Default::default()
                };
                i.notes.push(format!("parser crashed: {e}"));
                i
            }
        };
        self.scan_input(&input).await
    }

    /// Scans an already parsed input.
    pub async fn scan_input(&self, input: &ScanInput) -> Decision {
        let runs = self.scanners.iter().map(|s| run_one(s.as_ref(), input));
        let reports = join_all(runs).await;
        let mut d = self.policy.decide(reports);
        d.observables = input.observables();
        d
    }
}

async fn run_one(s: &dyn Scanner, input: &ScanInput) -> ScannerReport {
    let start = Instant::now();
    let result = tokio::time::timeout(s.timeout(), s.scan(input)).await;
    let elapsed_ms = start.elapsed().as_millis() as u64;
    let (findings, error) = match result {
        Ok(Ok(f)) => (f, None),
        Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
        Err(_) => (Vec::new(), Some(format!("timed out after {} ms", s.timeout().as_millis()))),
    };
    if let Some(e) = &error {
        tracing::warn!(scanner = s.id(), error = %e, critical = s.failure_mode() == FailureMode::Closed, "scanner failed");
    }
    ScannerReport {
        scanner: s.id().to_string(),
        critical: s.failure_mode() == FailureMode::Closed,
        findings,
        elapsed_ms,
        error,
    }
}

impl Decider for Pipeline {
    fn id(&self) -> &'static str {
        "pipeline"
    }

    fn decide<'a>(&'a self, req: ScanRequest<'a>) -> BoxFuture<'a, Result<Decision, ScanError>> {
        Box::pin(async move { Ok(self.scan(req.raw.to_vec()).await) })
    }
}
