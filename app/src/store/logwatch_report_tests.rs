use super::*;
use crate::clock::{SharedClock, TestClock};
use crate::domain::NewIndicator;
use crate::logwatch::parse::{AuthEvent, Outcome, Service};
use crate::store::AttackRecord;
use std::sync::Arc;

const T0: i64 = 1_800_000_000;

fn store(dir: &std::path::Path) -> Store {
    let clock: SharedClock = Arc::new(TestClock::new(chrono::DateTime::from_timestamp(T0, 0).unwrap()));
    Store::open(&dir.join("db"), &[7; 32], clock).unwrap()
}

fn attack(at: i64, ip: &str, country: &str, expires: &str) -> AttackRecord {
    AttackRecord {
        at,
        kind: "spray_users".into(),
        ip: Some(ip.into()),
        count: 5,
        country: Some(country.into()),
        asn: Some(64500),
        as_org: Some("Example Net".into()),
        detail: format!("password spraying from {ip}"),
        indicator: Some(NewIndicator {
            kind: "ip".into(),
            value: ip.into(),
            source: IOC_SOURCE.into(),
            confidence: 85,
            severity: "high".into(),
            expires_at: Some(expires.into()),
            false_positive: false,
            note: None,
        }),
        ..Default::default()
    }
}

fn event(at: i64, ip: &str, user: &str, outcome: Outcome) -> AuthEvent {
    AuthEvent {
        at,
        service: Service::Imap,
        outcome,
        ip: ip.parse().unwrap(),
        user: Some(user.into()),
        attempts: 2,
    }
}

#[tokio::test]
async fn attackers_days_tops_and_summary_agree_with_what_was_stored() {
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    let events = vec![
        event(T0 - 86_400, "203.0.113.9", "alice", Outcome::Failed),
        event(T0, "203.0.113.9", "bob", Outcome::Failed),
        event(T0, "203.0.113.9", "bob", Outcome::Succeeded),
        event(T0, "198.51.100.7", "carol", Outcome::Failed),
    ];
    let attacks = vec![
        attack(T0 - 86_400, "203.0.113.9", "NL", "2030-01-01T00:00:00Z"),
        attack(T0, "198.51.100.7", "DE", "2020-01-01T00:00:00Z"),
    ];
    s.logwatch_commit("/var/log/mail.log", None, events, attacks).await.unwrap();

    let all = s.logwatch_attackers(AttackFilter::default(), 10).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let a = &all[0];
    assert_eq!(
        (a.ip.as_str(), a.attempts, a.users),
        ("203.0.113.9", 4, 2),
        "the success is not an attempt"
    );
    assert_eq!((a.first_seen, a.last_seen), (T0 - 86_400, T0));
    assert_eq!((a.country.as_deref(), a.asn, a.ioc.as_str()), (Some("NL"), Some(64500), "active"));
    assert_eq!(all[1].ioc, "expired");

    let only_de = AttackFilter {
        country: Some("DE".into()),
        ..Default::default()
    };
    assert_eq!(s.logwatch_attackers(only_de, 10).await.unwrap().len(), 1);
    let tried_alice = AttackFilter {
        user: Some("alice".into()),
        ..Default::default()
    };
    let t = s.logwatch_attackers(tried_alice, 10).await.unwrap();
    assert_eq!(t.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>(), vec!["203.0.113.9"]);
    let page = s.logwatch_attackers_page(AttackFilter::default(), 1, 10).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].ip, "203.0.113.9");

    let by_ip = AttackFilter {
        ip: Some("203.0.113.9".into()),
        ..Default::default()
    };
    let attempts = s.logwatch_attempts(by_ip.clone(), None, 2).await.unwrap();
    assert_eq!(attempts.len(), 2);
    let rest = s.logwatch_attempts(by_ip, Some(attempts[1].id), 10).await.unwrap();
    assert_eq!(rest.len(), 1, "paged by id");

    let days = s.logwatch_days(0).await.unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!((days[1].attempts, days[1].attackers, days[1].users), (4, 1, 2));
    let shares = s.logwatch_day_shares(0, false).await.unwrap();
    assert!(shares.iter().any(|d| d.name == "DE" && d.count == 1), "{shares:?}");
    let (users, countries, asns) = s.logwatch_tops(0, 5).await.unwrap();
    assert_eq!(users.len(), 3, "{users:?}");
    assert_eq!(countries.len(), 2);
    assert_eq!(asns[0].name, "AS64500 Example Net");
    assert_eq!(asns[0].count, 2);

    let sum = s.logwatch_summary(T0 - 10, 5).await.unwrap();
    assert_eq!((sum.attacks, sum.attackers, sum.attempts), (1, 1, 4));
    assert_eq!(sum.incidents.len(), 1, "the second address joined by its ASN: {sum:?}");
    let block = s.logwatch_block_entries().await.unwrap();
    assert_eq!(block.len(), 2, "expiry is judged by the caller");
}
