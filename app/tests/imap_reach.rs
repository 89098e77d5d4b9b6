//! Issue 15, defect 1, against the real Dovecot: the watched folder is
//! deleted and created again by another client while Postern idles in it.

use crate::common::client::TestClient;
use crate::common::harness::{Postern, account, tuning};
use crate::common::stack::shared;
use crate::common::{eventually, mail, unique};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// Defect 1: the new folder's mail is scanned exactly once, under its new
/// UIDVALIDITY, and blocked mail in it is quarantined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_15_folder_deleted_and_recreated_while_idling_is_rescanned_once() {
    let d = shared();
    let (user, pass) = d.new_user("recreate");
    let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
    c.create("Work").await;
    let old_uv = c.uidvalidity("Work").await;
    let mut t = tuning();
    t.idle_renew = Duration::from_secs(2);
    let p = Postern::start(vec![account("a", d.imap_port, &user, &pass, &["Work"])], t, None).await;
    p.wait_watching("a").await;
    c.append("Work", None, &mail("ok@good.test", "before", &unique("before"))).await;
    p.wait_done("a", 1).await;
    p.wait_watching("a").await;

    c.delete("Work").await;
    c.create("Work").await;
    let new_uv = c.uidvalidity("Work").await;
    assert_ne!(old_uv, new_uv, "Dovecot gave the new folder a new UIDVALIDITY");
    let bad = unique("after-bad");
    c.append("Work", None, &mail("bad@evil.test", "after, bad", &bad)).await;
    c.append("Work", None, &mail("ok@good.test", "after, ok", &unique("after-ok")))
        .await;

    let rows = eventually(T, "the new folder scanned", || async {
        let rows = p.store.message_rows("a").await.unwrap();
        (rows.iter().filter(|r| r.uidvalidity == new_uv && r.status != "decided").count() >= 2).then_some(rows)
    })
    .await;
    eventually(T, "blocked mail quarantined", || async {
        let mut c = TestClient::connect(d.imap_port, &user, &pass).await;
        (c.ids("Quarantine").await.iter().any(|m| m.contains(&bad)) && c.count("Work").await == 1).then_some(())
    })
    .await;
    // Nothing of the new folder is recorded twice or under the old UIDVALIDITY.
    let rows_now = p.store.message_rows("a").await.unwrap();
    let mut fresh: Vec<u32> = rows_now.iter().filter(|r| r.uidvalidity == new_uv).map(|r| r.uid).collect();
    fresh.sort_unstable();
    assert_eq!(fresh, vec![1, 2], "{rows:?}");
    assert_eq!(rows_now.iter().filter(|r| r.uidvalidity == old_uv).count(), 1, "{rows_now:?}");
    p.manager.shutdown().await;
}
