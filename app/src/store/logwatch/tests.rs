use super::*;
use crate::clock::{SharedClock, TestClock};
use std::sync::Arc;

fn store(dir: &std::path::Path) -> Store {
    let clock: SharedClock = Arc::new(TestClock::new(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()));
    Store::open(&dir.join("db"), &[7; 32], clock).unwrap()
}

fn ind(value: &str, confidence: u8, expires: &str) -> NewIndicator {
    NewIndicator {
        kind: "ip".into(),
        value: value.into(),
        source: IOC_SOURCE.into(),
        confidence,
        severity: "high".into(),
        expires_at: Some(expires.into()),
        false_positive: false,
        note: Some("brute force".into()),
    }
}

fn attack(i: NewIndicator) -> AttackRecord {
    AttackRecord {
        at: 1_800_000_000,
        kind: "brute_force".into(),
        ip: Some(i.value.clone()),
        count: 10,
        detail: "brute force".into(),
        indicator: Some(i),
        ..Default::default()
    }
}

fn event(at: i64) -> AuthEvent {
    AuthEvent {
        at,
        service: Service::Pop3,
        outcome: Outcome::Failed,
        ip: "203.0.113.4".parse().unwrap(),
        user: Some("bob".into()),
        attempts: 3,
    }
}

#[tokio::test]
async fn a_batch_stores_events_cursor_and_sightings_together() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    assert_eq!(s.logwatch_cursor("/var/log/mail.log").await.unwrap(), None);
    let c = Cursor {
        inode: u64::MAX - 3,
        offset: 4096,
        head_len: 256,
        head: "ab".repeat(32),
    };
    let a = attack(ind("203.0.113.4", 70, "2027-01-08T00:00:00Z"));
    let n = s
        .logwatch_commit(
            "/var/log/mail.log",
            Some(Position::File(c.clone())),
            vec![event(100), event(200)],
            vec![a.clone()],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "a new attacker is a new indicator");
    assert_eq!(s.logwatch_cursor("/var/log/mail.log").await.unwrap(), Some(c));
    assert_eq!(s.logwatch_events_since(150).await.unwrap(), vec![event(200)]);
    s.logwatch_commit("journal", Some(Position::Journal("s=1;i=2".into())), vec![], vec![])
        .await
        .unwrap();
    assert_eq!(s.logwatch_journal_cursor("journal").await.unwrap().as_deref(), Some("s=1;i=2"));
    // The same attack again: a sighting, not an index change.
    assert_eq!(
        s.logwatch_commit("/var/log/mail.log", None, vec![], vec![a.clone()]).await.unwrap(),
        0
    );
    let iocs = s.all_indicators().await.unwrap();
    assert_eq!(iocs.len(), 1);
    assert_eq!((iocs[0].ind.source.as_str(), iocs[0].ind.confidence), (IOC_SOURCE, 70));
    let attacks = s.logwatch_attacks(10).await.unwrap();
    assert_eq!(attacks.len(), 2);
    assert!(attacks.iter().all(|r| r.indicator == Some(iocs[0].id)));
}

#[tokio::test]
async fn indicators_change_only_when_stronger_or_much_longer_and_never_when_false_positive() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    let commit = |i: NewIndicator| {
        let s = s.clone();
        async move { s.logwatch_commit("f", None, vec![], vec![attack(i)]).await.unwrap() }
    };
    assert_eq!(commit(ind("198.51.100.1", 70, "2027-01-08T00:00:00Z")).await, 1);
    assert_eq!(
        commit(ind("198.51.100.1", 70, "2027-01-08T05:00:00Z")).await,
        0,
        "an hour or five is not worth a rebuild"
    );
    assert_eq!(commit(ind("198.51.100.1", 70, "2027-01-08T07:00:00Z")).await, 1);
    assert_eq!(commit(ind("198.51.100.1", 90, "2027-01-08T07:00:00Z")).await, 1);
    let row = s.all_indicators().await.unwrap().remove(0);
    assert_eq!(
        (row.ind.confidence, row.ind.expires_at.as_deref()),
        (90, Some("2027-01-08T07:00:00Z"))
    );
    // The operator marks it a false positive: log watch leaves it alone.
    let mut fp = row.ind.clone();
    fp.false_positive = true;
    s.add_indicators(vec![fp], "admin").await.unwrap();
    assert_eq!(commit(ind("198.51.100.1", 100, "2028-01-01T00:00:00Z")).await, 0);
    let row = s.all_indicators().await.unwrap().remove(0);
    assert!(row.ind.false_positive);
    assert_eq!(row.ind.confidence, 90);
}
