use super::*;
use crate::logwatch::parse::Service;
use crate::logwatch::rules::{DEFAULT, Rules};

fn rules() -> Rules {
    Rules::parse(DEFAULT).unwrap()
}

fn ev(at: i64, outcome: Outcome, ip: &str, user: Option<&str>) -> AuthEvent {
    AuthEvent {
        at,
        service: Service::Imap,
        outcome,
        ip: ip.parse().unwrap(),
        user: user.map(str::to_string),
        attempts: 1,
    }
}

fn kinds(a: &[Alert]) -> Vec<AlertKind> {
    a.iter().map(|a| a.kind).collect()
}

#[test]
fn failures_from_one_ip_alert_once_per_window() {
    let mut d = Detector::new(rules());
    let mut alerts = Vec::new();
    for i in 0..25 {
        alerts.extend(d.observe(&ev(1000 + i, Outcome::Failed, "203.0.113.5", None)));
    }
    assert_eq!(kinds(&alerts), vec![AlertKind::BruteForce]);
    assert_eq!((alerts[0].count, alerts[0].ips.len()), (10, 1));
    // Past the window the same attacker is raised again.
    for i in 0..10 {
        alerts.extend(d.observe(&ev(1000 + 700 + i, Outcome::Failed, "203.0.113.5", None)));
    }
    assert_eq!(kinds(&alerts), vec![AlertKind::BruteForce, AlertKind::BruteForce]);
    // Spread thinner than the window: nothing.
    let mut d = Detector::new(rules());
    let slow: Vec<Alert> = (0..30)
        .flat_map(|i| d.observe(&ev(i * 120, Outcome::Failed, "203.0.113.5", None)))
        .collect();
    assert!(slow.is_empty(), "{slow:?}");
}

#[test]
fn one_ip_many_users_is_spraying() {
    let mut d = Detector::new(rules());
    let users = ["alice", "bob", "carol", "dave", "erin"];
    let a: Vec<Alert> = users
        .iter()
        .flat_map(|u| d.observe(&ev(50, Outcome::Failed, "198.51.100.7", Some(u))))
        .collect();
    assert_eq!(kinds(&a), vec![AlertKind::SprayUsers]);
    assert_eq!(a[0].count, 5);
}

#[test]
fn many_ips_one_user_is_spraying_and_lists_the_addresses() {
    let mut d = Detector::new(rules());
    let a: Vec<Alert> = (1..=5)
        .flat_map(|i| d.observe(&ev(50, Outcome::Failed, &format!("192.0.2.{}", i * 40), Some("ceo@example.org"))))
        .collect();
    assert_eq!(kinds(&a), vec![AlertKind::SprayIps]);
    assert_eq!(a[0].ips.len(), 5);
    assert_eq!(a[0].user.as_deref(), Some("ceo@example.org"));
}

#[test]
fn a_network_alert_needs_more_than_one_member() {
    let mut d = Detector::new(rules());
    let mut a = Vec::new();
    for i in 0..30 {
        // Nine failures each from several hosts of one /24: no single IP
        // crosses 10, the network crosses 30.
        let ip = format!("203.0.113.{}", 10 + i / 9);
        a.extend(d.observe(&ev(100 + i as i64, Outcome::Failed, &ip, None)));
    }
    assert_eq!(kinds(&a), vec![AlertKind::NetworkBruteForce]);
    assert_eq!(a[0].network.unwrap().to_string(), "203.0.113.0/24");
    assert_eq!(a[0].ips.len(), 4);
    let v6: Vec<Alert> = (0..30u32)
        .flat_map(|i| d.observe(&ev(200, Outcome::Failed, &format!("2001:db8:5:6::{:x}", i / 9 + 1), None)))
        .collect();
    assert_eq!(v6.iter().find_map(|a| a.network).unwrap().to_string(), "2001:db8:5:6::/64");
}

#[test]
fn success_after_failures_is_a_compromise_suspicion_and_a_plain_typo_is_not() {
    let mut d = Detector::new(rules());
    for i in 0..6 {
        d.observe(&ev(10 + i, Outcome::Failed, "203.0.113.80", Some("bob")));
    }
    let a = d.observe(&ev(20, Outcome::Succeeded, "203.0.113.80", Some("bob")));
    assert_eq!(kinds(&a), vec![AlertKind::CompromiseSuspicion]);
    assert_eq!((a[0].count, a[0].user.as_deref()), (6, Some("bob")));
    // Legitimate: one typo, then in.
    let mut d = Detector::new(rules());
    d.observe(&ev(10, Outcome::Failed, "192.0.2.33", Some("carol")));
    assert!(d.observe(&ev(12, Outcome::Succeeded, "192.0.2.33", Some("carol"))).is_empty());
}

#[test]
fn ignored_networks_probes_and_rejects() {
    let mut d = Detector::new(rules());
    let local: Vec<Alert> = (0..50)
        .flat_map(|i| d.observe(&ev(i, Outcome::Failed, "127.0.0.1", Some("x"))))
        .collect();
    assert!(local.is_empty());
    let p: Vec<Alert> = (0..30)
        .flat_map(|i| d.observe(&ev(i, Outcome::Probe, "198.51.100.9", None)))
        .collect();
    assert_eq!(kinds(&p), vec![AlertKind::Probing]);
    let r: Vec<Alert> = (0..20)
        .flat_map(|i| d.observe(&ev(i, Outcome::Rejected, "198.51.100.10", Some("x@y.test"))))
        .collect();
    assert_eq!(kinds(&r), vec![AlertKind::Rejects]);
}

#[test]
fn memory_stays_bounded_under_a_flood_of_addresses() {
    let text = DEFAULT.replace("max_tracked = 100000", "max_tracked = 1000");
    let mut d = Detector::new(Rules::parse(&text).unwrap());
    for i in 0..200_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i * 7);
        // Every address once, all in one window: nothing expires.
        d.observe(&ev(100, Outcome::Failed, &ip.to_string(), Some(&format!("u{i}"))));
    }
    assert!(d.tracked() <= 3 * 1000, "{} keys", d.tracked());
    assert!(d.untracked > 190_000);
    // Once the window has passed, sweeping frees the keys for new ones.
    for i in 0..SWEEP_EVERY as u32 {
        d.observe(&ev(100_000, Outcome::Failed, "192.0.2.1", Some(&format!("v{i}"))));
    }
    assert!(d.tracked() < 1100, "{} keys after the sweep", d.tracked());
}
