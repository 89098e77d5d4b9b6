//! Thresholds and IOC settings from `rules/logwatch.toml`, validated at
//! load: every problem is reported at once, by key, with the allowed range.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;

/// The shipped rules, used when no file is configured.
pub const DEFAULT: &str = include_str!("../../../rules/logwatch.toml");

/// Counts that raise an alert within one window.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Failed attempts from one IP.
    pub ip_failures: u32,
    /// Failed attempts from one network.
    pub network_failures: u32,
    /// Failed attempts against one user name.
    pub user_failures: u32,
    /// Distinct user names tried from one IP.
    pub spray_users_per_ip: u32,
    /// Distinct IPs trying one user name.
    pub spray_ips_per_user: u32,
    /// Connections dropped around AUTH from one IP.
    pub probes_per_ip: u32,
    /// Rejected recipients from one IP.
    pub rejects_per_ip: u32,
    /// Failures (from the IP or on the user) before a success that makes it a compromise suspicion.
    pub success_after_failures: u32,
}

/// How an alert's addresses become indicators.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IocRules {
    /// Hours an attacker indicator lives after its latest attack.
    pub expiry_hours: u32,
    /// Confidence (0–100) per alert kind.
    pub confidence_brute_force: u8,
    /// For network brute force (the network becomes a CIDR indicator).
    pub confidence_network: u8,
    /// For spraying, either direction.
    pub confidence_spray: u8,
    /// For probing.
    pub confidence_probing: u8,
    /// For rejected recipients.
    pub confidence_rejects: u8,
    /// For a success after failures.
    pub confidence_compromise: u8,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RawRules {
    window_minutes: u32,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
    max_tracked: usize,
    #[serde(default)]
    ignore: Vec<String>,
    thresholds: Thresholds,
    ioc: IocRules,
}

/// Validated rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Window length in minutes.
    pub window_minutes: u32,
    /// Prefix that groups IPv4 attackers (e.g. 24).
    pub ipv4_prefix: u8,
    /// Prefix that groups IPv6 attackers (e.g. 64).
    pub ipv6_prefix: u8,
    /// Keys followed per window kind at most.
    pub max_tracked: usize,
    /// Networks never counted (the mail host, webmail, monitoring).
    pub ignore: Vec<IpNet>,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Indicator settings.
    pub ioc: IocRules,
}

impl Rules {
    /// Parses and validates; the error lists every problem.
    pub fn parse(text: &str) -> Result<Rules, String> {
        let raw: RawRules = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut bad = Vec::new();
        let mut range = |key: &str, v: u64, lo: u64, hi: u64| {
            if !(lo..=hi).contains(&v) {
                bad.push(format!("{key} = {v}: must be {lo} to {hi}"));
            }
        };
        range("window_minutes", raw.window_minutes.into(), 1, 7 * 24 * 60);
        range("ipv4_prefix", raw.ipv4_prefix.into(), 8, 32);
        range("ipv6_prefix", raw.ipv6_prefix.into(), 16, 128);
        range("max_tracked", raw.max_tracked as u64, 100, 10_000_000);
        let t = &raw.thresholds;
        for (k, v) in [
            ("thresholds.ip_failures", t.ip_failures),
            ("thresholds.network_failures", t.network_failures),
            ("thresholds.user_failures", t.user_failures),
            ("thresholds.spray_users_per_ip", t.spray_users_per_ip),
            ("thresholds.spray_ips_per_user", t.spray_ips_per_user),
            ("thresholds.probes_per_ip", t.probes_per_ip),
            ("thresholds.rejects_per_ip", t.rejects_per_ip),
            ("thresholds.success_after_failures", t.success_after_failures),
        ] {
            range(k, v.into(), 1, 100_000);
        }
        let i = &raw.ioc;
        range("ioc.expiry_hours", i.expiry_hours.into(), 1, 24 * 365);
        for (k, v) in [
            ("ioc.confidence_brute_force", i.confidence_brute_force),
            ("ioc.confidence_network", i.confidence_network),
            ("ioc.confidence_spray", i.confidence_spray),
            ("ioc.confidence_probing", i.confidence_probing),
            ("ioc.confidence_rejects", i.confidence_rejects),
            ("ioc.confidence_compromise", i.confidence_compromise),
        ] {
            range(k, v.into(), 0, 100);
        }
        let mut ignore = Vec::new();
        for s in &raw.ignore {
            match s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)) {
                Ok(n) => ignore.push(n.trunc()),
                Err(_) => bad.push(format!("ignore: {s:?} is not an address or network")),
            }
        }
        if !bad.is_empty() {
            return Err(bad.join("; "));
        }
        Ok(Rules {
            window_minutes: raw.window_minutes,
            ipv4_prefix: raw.ipv4_prefix,
            ipv6_prefix: raw.ipv6_prefix,
            max_tracked: raw.max_tracked,
            ignore,
            thresholds: raw.thresholds,
            ioc: raw.ioc,
        })
    }

    /// The window in seconds.
    pub fn window_secs(&self) -> i64 {
        i64::from(self.window_minutes) * 60
    }

    /// Whether `ip` is never counted.
    pub fn ignored(&self, ip: IpAddr) -> bool {
        self.ignore.iter().any(|n| n.contains(&ip))
    }

    /// The /24 or /64 (as configured) that holds `ip`.
    pub fn network_of(&self, ip: IpAddr) -> IpNet {
        let prefix = if ip.is_ipv4() { self.ipv4_prefix } else { self.ipv6_prefix };
        IpNet::new(ip, prefix).map(|n| n.trunc()).unwrap_or_else(|_| IpNet::from(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_load() {
        let r = Rules::parse(DEFAULT).unwrap();
        assert_eq!(r.network_of("203.0.113.77".parse().unwrap()).to_string(), "203.0.113.0/24");
        assert_eq!(r.network_of("2001:db8:1:2:3::9".parse().unwrap()).to_string(), "2001:db8:1:2::/64");
        assert!(r.ignored("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn every_bad_value_is_named_at_once() {
        let text = DEFAULT
            .replace("window_minutes = 10", "window_minutes = 0")
            .replace("ipv4_prefix = 24", "ipv4_prefix = 40")
            .replace("confidence_spray = 85", "confidence_spray = 101")
            .replace("ignore = [\"127.0.0.0/8\", \"::1\"]", "ignore = [\"nope\"]");
        let e = Rules::parse(&text).unwrap_err();
        for k in ["window_minutes", "ipv4_prefix", "ioc.confidence_spray", "\"nope\""] {
            assert!(e.contains(k), "{k} missing from {e}");
        }
        let e = Rules::parse(&format!("{DEFAULT}\nthreshold = 3\n")).unwrap_err();
        assert!(e.contains("threshold"), "{e}");
    }
}
