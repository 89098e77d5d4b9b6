//! A message's CPU-bound scanners, one after another in one blocking task.
//!
//! Issue 21: a hand-off to the blocking pool per scanner (a thread woken, a
//! runtime woken back) cost more than most of the scanners' own work. Each
//! scanner still has its own deadline, counted from when the one before it
//! finished (the first one's from the hand-off, so waiting for a thread
//! counts, as before). When one overruns it is reported as timed out and
//! left to finish on its own (its work is bounded), and the scanners it had
//! not reached run on their own blocking threads, as they did before this
//! group existed: a slow scanner never costs the others their result.

use super::{report, run_one};
use crate::domain::{Finding, ScannerReport};
use crate::scan::{ScanError, ScanInput, Scanner};
use futures::future::join_all;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

type Outcome = (usize, Result<Vec<Finding>, ScanError>, Duration);

/// Runs `scanners` (all CPU-bound) over `input`; the reports come back in
/// the scanners' order.
pub(super) async fn run(scanners: Vec<Arc<dyn Scanner>>, input: Arc<ScanInput>) -> Vec<ScannerReport> {
    let n = scanners.len();
    if n == 0 {
        return Vec::new();
    }
    // The next scanner to start. The group claims each index before it
    // starts it; once this side gives up on the group it moves the cursor
    // to `n`, so every index is run by exactly one of the two.
    let cursor = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
    {
        let (scanners, input, cursor, handle) = (scanners.clone(), input.clone(), cursor.clone(), tokio::runtime::Handle::current());
        // Not awaited: a group that overran is abandoned, never waited for.
        drop(tokio::task::spawn_blocking(move || {
            loop {
                let i = cursor.load(Ordering::SeqCst);
                if i >= n || cursor.compare_exchange(i, i + 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                    return;
                }
                let start = Instant::now();
                let result = handle.block_on(scanners[i].scan(&input));
                if tx.send((i, result, start.elapsed())).is_err() {
                    return;
                }
            }
        }));
    }
    let mut out: Vec<Option<ScannerReport>> = vec![None; n];
    let mut since = Instant::now();
    // Indices below this are the group's; from it on, run alone.
    let mut group_end = n;
    while let Some(next) = (0..group_end).find(|&i| out[i].is_none()) {
        let deadline = since + scanners[next].timeout();
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some((i, result, elapsed))) => {
                // A result for one already reported as timed out stays out.
                if out[i].is_none() {
                    out[i] = Some(report(&*scanners[i], Ok(result), elapsed));
                }
                since = Instant::now();
            }
            Err(_) => {
                out[next] = Some(report(&*scanners[next], Err(()), since.elapsed()));
                group_end = group_end.min(cursor.swap(n, Ordering::SeqCst));
                since = Instant::now();
            }
            // The group is gone before reporting `next`: it panicked there.
            Ok(None) => {
                let crashed = ScanError::scanner(scanners[next].id(), "crashed: the scanner panicked");
                out[next] = Some(report(&*scanners[next], Ok(Err(crashed)), since.elapsed()));
                group_end = group_end.min(cursor.swap(n, Ordering::SeqCst));
            }
        }
    }
    // A scanner whose deadline passed before the group reached it (no
    // thread was free in time) keeps its timeout: its deadline counted the
    // wait, as when each scanner had its own blocking task.
    let left: Vec<usize> = (group_end..n).filter(|&i| out[i].is_none()).collect();
    let alone = left.iter().map(|&i| run_one(scanners[i].clone(), input.clone()));
    for (i, r) in left.iter().zip(join_all(alone).await) {
        out[*i] = Some(r);
    }
    debug_assert!(!out.iter().any(Option::is_none));
    out.into_iter()
        .zip(&scanners)
        .map(|(r, s)| r.unwrap_or_else(|| report(&**s, Err(()), Duration::ZERO)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::TIMED_OUT;
    use super::super::tests::{Fake, Hold};
    use super::*;

    fn fake(id: &'static str, hold_ms: u64, panics: bool) -> Arc<dyn Scanner> {
        Arc::new(Fake {
            id,
            hold: match (panics, hold_ms) {
                (true, _) => Hold::Panic,
                (false, 0) => Hold::Nothing,
                (false, ms) => Hold::Sleep(Duration::from_millis(ms)),
            },
            // Long enough for a panic hook that prints a backtrace.
            timeout: Duration::from_millis(if panics { 10_000 } else { 300 }),
            tags: true,
        })
    }

    fn summary(reports: &[ScannerReport]) -> Vec<(String, usize, Option<String>)> {
        reports
            .iter()
            .map(|r| {
                (
                    r.scanner.clone(),
                    r.findings.len(),
                    r.error.as_ref().map(|e| e.split(' ').next().unwrap_or("").to_string()),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn every_scanner_reports_in_order() {
        let input = Arc::new(ScanInput::default());
        let r = run(vec![fake("a", 0, false), fake("b", 0, false), fake("c", 0, false)], input).await;
        let names: Vec<_> = r
            .iter()
            .map(|r| (r.scanner.as_str(), r.findings.len(), r.error.is_none()))
            .collect();
        assert_eq!(names, [("a", 1, true), ("b", 1, true), ("c", 1, true)]);
    }

    #[tokio::test]
    async fn a_slow_scanner_times_out_alone_and_the_rest_still_run() {
        let input = Arc::new(ScanInput::default());
        let t = Instant::now();
        let r = run(
            vec![
                fake("a", 0, false),
                fake("slow", 2_000, false),
                fake("c", 0, false),
                fake("d", 0, false),
            ],
            input,
        )
        .await;
        let s = summary(&r);
        assert_eq!(s[0], ("a".into(), 1, None));
        assert_eq!(s[1], ("slow".into(), 0, Some(TIMED_OUT.split(' ').next().unwrap().into())), "{s:?}");
        assert_eq!(s[2], ("c".into(), 1, None), "{s:?}");
        assert_eq!(s[3], ("d".into(), 1, None), "{s:?}");
        // The slow one's deadline, not its 2 s of work, set the pace.
        assert!(t.elapsed() < Duration::from_millis(1_500), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn a_panicking_scanner_is_reported_and_the_rest_still_run() {
        let input = Arc::new(ScanInput::default());
        let r = run(vec![fake("a", 0, false), fake("boom", 0, true), fake("c", 0, false)], input).await;
        let s = summary(&r);
        assert_eq!(s[0], ("a".into(), 1, None));
        assert_eq!(s[1].1, 0);
        assert!(r[1].error.as_deref().is_some_and(|e| e.contains("crashed")), "{:?}", r[1]);
        assert_eq!(s[2], ("c".into(), 1, None), "{s:?}");
    }
}
