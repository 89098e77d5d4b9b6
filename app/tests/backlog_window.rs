//! Issue 21, item 1: the backlog window refills as any scan finishes, while
//! decisions are still recorded in UID order, so the cursor never passes a
//! UID whose scan has not finished.

use crate::common::client::TestClient;
use crate::common::harness::{Postern, account, tuning};
use crate::common::stack::shared;
use crate::common::{eventually, mail, unique};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Holds the message titled "slow" until the test lets it go; every other
/// message passes at once. Counts the scans started.
struct Gate {
    started: AtomicUsize,
    open: tokio::sync::Semaphore,
}

impl postern::scan::Decider for Gate {
    fn id(&self) -> &'static str {
        "gate"
    }
    fn decide<'a>(
        &'a self,
        req: postern::scan::ScanRequest<'a>,
    ) -> BoxFuture<'a, Result<postern::domain::Decision, postern::scan::ScanError>> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            if postern::scan::envelope(req.raw).subject.as_deref() == Some("slow") {
                let _ = self.open.acquire().await;
            }
            Ok(postern::domain::Decision {
                reason: "test decider".into(),
                ..Default::default()
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_scans_finish_first_and_the_cursor_waits_for_the_oldest() {
    let d = shared();
    let (user, pass) = d.new_user("window");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    // UID 1 is slow; the 11 after it are quick: more than the window's
    // scan slots, so all of them start only if slots refill while UID 1
    // still holds its own.
    c.append("INBOX", None, &mail("a@x.test", "slow", &unique("w"))).await;
    for i in 0..11 {
        c.append("INBOX", None, &mail("a@x.test", &format!("quick {i}"), &unique("w")))
            .await;
    }
    let gate = Arc::new(Gate {
        started: AtomicUsize::new(0),
        open: tokio::sync::Semaphore::new(0),
    });
    let mut a = account("a", d.imap_port, &user, &pass, &["INBOX"]);
    a.start_at = postern::config::StartAt::Backfill { days: 3 };
    let p = Postern::start_with(vec![a], tuning(), None, gate.clone()).await;
    eventually(T, "all 12 scans started while UID 1 is held", || async {
        (gate.started.load(Ordering::SeqCst) == 12).then_some(())
    })
    .await;
    let state = p.store.mailbox_state("a", "INBOX").await.unwrap().expect("state");
    let uids: Vec<u32> = (1..=12).collect();
    // Eleven finished scans, and not one recorded ahead of UID 1: the
    // backfill cursor has not moved.
    let recorded = p.store.recorded_uids("a", "INBOX", state.uidvalidity, &uids).await.unwrap();
    assert!(recorded.is_empty(), "recorded ahead of the unfinished UID 1: {recorded:?}");
    assert!(state.backfill_done_uid.unwrap_or(0) < 1, "cursor passed UID 1: {state:?}");
    gate.open.add_permits(1);
    let rows = p.wait_done("a", 12).await;
    assert_eq!(rows.len(), 12);
    let state = eventually(T, "backfill cursor at the end", || async {
        let s = p.store.mailbox_state("a", "INBOX").await.unwrap()?;
        (s.backfill_done_uid >= Some(12)).then_some(s)
    })
    .await;
    assert_eq!(state.backfill_done_uid, Some(12));
    p.manager.shutdown().await;
}
