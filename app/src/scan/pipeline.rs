//! Runs every enabled scanner concurrently over one parsed input, each
//! under its own enforced deadline, and hands the reports to the policy.

use super::{Decider, FailureMode, InputOptions, Policy, ScanError, ScanInput, ScanRequest, Scanner, budget};
use crate::domain::{Decision, ScannerReport};
use futures::future::{BoxFuture, join_all};
use std::sync::Arc;
use std::time::Instant;

mod cpu_group;

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

    /// How this pipeline parses mail (authentication results, relays).
    pub fn input_options(&self) -> &InputOptions {
        &self.opts
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Parses (on the blocking pool: it is CPU-bound) and scans `raw`.
    /// Parsing runs under [`budget::PARSE_BUDGET`]: past it the parse is
    /// abandoned, the raw message still goes to the network scanners and
    /// the budget tag records that the rest was not inspected.
    pub async fn scan(&self, raw: Vec<u8>) -> Decision {
        let input = self.parse(raw).await;
        self.scan_input(Arc::new(input)).await
    }

    /// Like [`Pipeline::scan`], with the SMTP envelope the MTA reported
    /// (in-line mode) put over the one rebuilt from headers.
    pub async fn scan_envelope(&self, raw: Vec<u8>, env: &super::SmtpEnvelope) -> Decision {
        let mut input = self.parse(raw).await;
        env.apply(&mut input);
        self.scan_input(Arc::new(input)).await
    }

    async fn parse(&self, raw: Vec<u8>) -> ScanInput {
        self.parse_shared(Arc::new(raw)).await
    }

    /// Parses a buffer the caller shares (the worker keeps it for the EML
    /// copy), under the same budget as [`Pipeline::scan`].
    pub async fn parse_shared(&self, raw: Arc<Vec<u8>>) -> ScanInput {
        let opts = self.opts.clone();
        let shared = raw.clone();
        let parse = tokio::task::spawn_blocking(move || ScanInput::parse_shared(shared, &opts));
        match tokio::time::timeout(budget::PARSE_BUDGET, parse).await {
            Ok(Ok(i)) => i,
            Ok(Err(e)) => {
                // A panic inside the parser must not pass the message.
                let mut i = ScanInput {
                    raw,
                    unparseable: true,
                    ..Default::default()
                };
                i.notes.push(format!("parser crashed: {e}"));
                i
            }
            Err(_) => {
                tracing::warn!(
                    budget_ms = budget::PARSE_BUDGET.as_millis() as u64,
                    "parsing ran past its budget; abandoned"
                );
                let mut i = ScanInput { raw, ..Default::default() };
                i.limits
                    .time
                    .push(format!("parsing exceeded its {} ms budget", budget::PARSE_BUDGET.as_millis()));
                i
            }
        }
    }

    /// Scans an already parsed input.
    pub async fn scan_input(&self, input: Arc<ScanInput>) -> Decision {
        let (cpu, net): (Vec<_>, Vec<_>) = self.scanners.iter().cloned().partition(|s| s.cpu_bound());
        let (cpu, net) = futures::join!(
            cpu_group::run(cpu, input.clone()),
            join_all(net.into_iter().map(|s| run_one(s, input.clone())))
        );
        // Back in the scanners' order, which the reports and tests read.
        let (mut cpu, mut net) = (cpu.into_iter(), net.into_iter());
        let mut reports: Vec<ScannerReport> = self
            .scanners
            .iter()
            .filter_map(|s| if s.cpu_bound() { cpu.next() } else { net.next() })
            .collect();
        let timed_out: Vec<String> = reports
            .iter()
            .zip(&self.scanners)
            .filter(|(r, s)| s.cpu_bound() && r.error.as_deref().is_some_and(|e| e.starts_with(TIMED_OUT)))
            .map(|(r, _)| format!("scanner {} {}", r.scanner, r.error.as_deref().unwrap_or_default()))
            .collect();
        reports.extend(budget::report(&input, &timed_out));
        let mut d = self.policy.decide(reports);
        d.observables = input.observables();
        d
    }
}

const TIMED_OUT: &str = "timed out";

/// Runs one scanner under its deadline. A CPU-bound scanner runs on the
/// blocking pool: work inside an `async fn` that never yields would hold a
/// runtime thread, and the deadline could not fire until it finished
/// (issue 18: a 5 s deadline reported `elapsed_ms 9556`). A timed-out
/// blocking task is abandoned and finishes on its own; its work is bounded.
/// The pipeline runs a message's CPU-bound scanners together
/// ([`cpu_group`]); this is for the ones that group gave back.
async fn run_one(s: Arc<dyn Scanner>, input: Arc<ScanInput>) -> ScannerReport {
    let start = Instant::now();
    let result = if s.cpu_bound() {
        let (scanner, handle) = (s.clone(), tokio::runtime::Handle::current());
        let task = tokio::task::spawn_blocking(move || handle.block_on(scanner.scan(&input)));
        tokio::time::timeout(s.timeout(), task)
            .await
            .map(|joined| joined.unwrap_or_else(|e| Err(ScanError::scanner(s.id(), format!("crashed: {e}")))))
    } else {
        tokio::time::timeout(s.timeout(), s.scan(&input)).await
    };
    report(&*s, result.map_err(|_| ()), start.elapsed())
}

/// A scanner's report from its result (`Err(())`: its deadline passed).
fn report(
    s: &dyn Scanner,
    result: Result<Result<Vec<crate::domain::Finding>, ScanError>, ()>,
    elapsed: std::time::Duration,
) -> ScannerReport {
    let (findings, error) = match result {
        Ok(Ok(f)) => (f, None),
        Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
        Err(()) => (Vec::new(), Some(format!("{TIMED_OUT} after {} ms", s.timeout().as_millis()))),
    };
    if let Some(e) = &error {
        tracing::warn!(scanner = s.id(), error = %e, critical = s.failure_mode() == FailureMode::Closed, "scanner failed");
    }
    ScannerReport {
        scanner: s.id().to_string(),
        critical: s.failure_mode() == FailureMode::Closed,
        findings,
        elapsed_ms: elapsed.as_millis() as u64,
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

    fn prepare<'a>(&'a self, raw: Arc<Vec<u8>>) -> BoxFuture<'a, super::Prepared> {
        Box::pin(async move { super::Prepared::from_input(self.parse_shared(raw).await) })
    }

    fn decide_prepared<'a>(
        &'a self,
        account: &'a str,
        mailbox: &'a str,
        p: &'a super::Prepared,
    ) -> BoxFuture<'a, Result<Decision, ScanError>> {
        match &p.input {
            Some(input) => Box::pin(async move { Ok(self.scan_input(input.clone()).await) }),
            None => self.decide(ScanRequest {
                account,
                mailbox,
                raw: &p.raw,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Finding, Verdict};
    use std::sync::Mutex;
    use std::sync::mpsc::{Receiver, channel};
    use std::time::Duration;

    /// What a test scanner does with its thread.
    pub(super) enum Hold {
        /// Returns at once.
        Nothing,
        /// Sleeps the thread (CPU work that never yields).
        Sleep(Duration),
        /// Panics.
        Panic,
        /// On the message titled "slow", holds the thread until the test
        /// lets go (or 20 s pass).
        OnSlow(Mutex<Receiver<()>>),
    }

    /// A CPU-bound test scanner; it reports its id, upper-cased, as a tag
    /// when `tags` is set (a tag the policy does not know).
    pub(super) struct Fake {
        pub(super) id: &'static str,
        pub(super) timeout: Duration,
        pub(super) hold: Hold,
        pub(super) tags: bool,
    }

    impl Scanner for Fake {
        fn id(&self) -> &'static str {
            self.id
        }
        fn timeout(&self) -> Duration {
            self.timeout
        }
        fn failure_mode(&self) -> FailureMode {
            FailureMode::Open
        }
        fn cpu_bound(&self) -> bool {
            true
        }
        fn tags(&self) -> &'static [&'static str] {
            &[]
        }
        fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
            Box::pin(async move {
                match &self.hold {
                    Hold::Nothing => {}
                    // Holding the thread is the point: CPU work that never yields.
                    #[allow(clippy::disallowed_methods)]
                    Hold::Sleep(d) => std::thread::sleep(*d),
                    Hold::Panic => panic!("{} panics", self.id),
                    Hold::OnSlow(rx) => {
                        if input.subject.as_deref() == Some("slow") {
                            let _ = rx.lock().map(|rx| rx.recv_timeout(Duration::from_secs(20)));
                        }
                    }
                }
                Ok(if self.tags {
                    vec![Finding::new(&self.id.to_uppercase(), "")]
                } else {
                    Vec::new()
                })
            })
        }
    }

    fn msg(subject: &str) -> Vec<u8> {
        format!("From: a@a.test\r\nSubject: {subject}\r\n\r\nhello\r\n").into_bytes()
    }

    // One runtime thread, as a worker thread would be: before issue 18 the
    // stalled scan held it, no deadline fired and nothing else ran.
    #[tokio::test]
    async fn issue_18_a_stalled_message_costs_its_budget_and_the_rest_go_on() {
        let (release, rx) = channel();
        let p = Pipeline::new(
            vec![Arc::new(Fake {
                id: "stall",
                timeout: Duration::from_millis(200),
                hold: Hold::OnSlow(Mutex::new(rx)),
                tags: false,
            })],
            Policy::default_policy().unwrap(),
            InputOptions::default(),
        );
        let (slow, others) = tokio::join!(p.scan(msg("slow")), join_all([p.scan(msg("a")), p.scan(msg("b"))]));
        // Every decision is in while the stalled work is still held.
        for d in &others {
            assert_eq!(d.verdict, Verdict::Pass, "{}", d.reason);
            assert!(!d.tags.iter().any(|t| t == budget::TAG_TIME), "{:?}", d.tags);
        }
        assert_eq!(slow.verdict, Verdict::Quarantine, "{}", slow.reason);
        assert!(slow.tags.iter().any(|t| t == budget::TAG_TIME), "{:?}", slow.tags);
        let stall = slow.reports.iter().find(|r| r.scanner == "stall").unwrap();
        assert!(stall.error.as_deref().is_some_and(|e| e.starts_with(TIMED_OUT)), "{stall:?}");
        drop(release);
    }

    #[tokio::test]
    async fn issue_18_deep_html_is_cut_and_flagged() {
        let p = Pipeline::new(Vec::new(), Policy::default_policy().unwrap(), InputOptions::default());
        let deep = format!(
            "From: a@a.test\r\nContent-Type: text/html\r\n\r\n<html><body>{}<a href='https://after.test/x'>x</a>",
            "<div>".repeat(2 * crate::scan::htmlbound::MAX_DEPTH)
        );
        let d = p.scan(deep.into_bytes()).await;
        assert!(d.tags.iter().any(|t| t == budget::TAG_HTML), "{:?}", d.tags);
        assert_ne!(d.verdict, Verdict::Pass, "a limit alone reaches at least flag: {}", d.reason);
        assert!(
            d.observables.iter().any(|o| o.value == "https://after.test/x"),
            "URLs past the cut are still collected: {:?}",
            d.observables
        );
    }
}
