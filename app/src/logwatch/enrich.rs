//! Country and ASN from local MaxMind-format databases (GeoLite2, DB-IP
//! Lite: the operator downloads them), and reverse DNS with a cache and a
//! deadline. Without a database there is simply no country or ASN; nothing
//! here reaches the network except the system resolver for rDNS, and only
//! when the operator turns it on.

use super::LogwatchError;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// What the databases say about an address.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GeoInfo {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// The AS's organisation.
    pub as_org: Option<String>,
}

#[derive(Deserialize, Default)]
struct CountryRec {
    iso_code: Option<String>,
}

/// The fields Postern reads from Country, City and ASN databases alike.
#[derive(Deserialize, Default)]
struct Record {
    #[serde(default)]
    country: Option<CountryRec>,
    #[serde(default)]
    registered_country: Option<CountryRec>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(default)]
    autonomous_system_organization: Option<String>,
}

/// Opened databases (a country or city one, an ASN one, or both).
#[derive(Default)]
pub struct Geo {
    readers: Vec<(PathBuf, maxminddb::Reader<Vec<u8>>)>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.readers.iter().map(|r| &r.0)).finish()
    }
}

impl Geo {
    /// Opens every database; a file that is missing or not in MaxMind
    /// format is an error naming it.
    pub fn open(paths: &[PathBuf]) -> Result<Geo, LogwatchError> {
        let mut readers = Vec::new();
        for p in paths {
            let r = maxminddb::Reader::open_readfile(p).map_err(|e| LogwatchError::Geo {
                path: p.display().to_string(),
                detail: e.to_string(),
            })?;
            readers.push((p.clone(), r));
        }
        Ok(Geo { readers })
    }

    /// Whether any database is configured.
    pub fn is_empty(&self) -> bool {
        self.readers.is_empty()
    }

    /// Country and ASN from whichever database has them; a lookup error
    /// (a corrupt record) leaves the field empty.
    pub fn lookup(&self, ip: IpAddr) -> GeoInfo {
        let mut out = GeoInfo::default();
        for (_, r) in &self.readers {
            let Ok(Some(rec)) = r.lookup(ip).and_then(|l| l.decode::<Record>()) else {
                continue;
            };
            if out.country.is_none() {
                out.country = rec.country.or(rec.registered_country).and_then(|c| c.iso_code);
            }
            if out.asn.is_none() {
                out.asn = rec.autonomous_system_number;
                out.as_org = rec.autonomous_system_organization;
            }
        }
        out
    }
}

/// Reverse lookups at most this many at once; beyond, an address goes without.
const RDNS_IN_FLIGHT: usize = 4;
/// Cached answers (names and "none") kept at most.
const RDNS_CACHE: usize = 10_000;

type Resolve = dyn Fn(IpAddr) -> Option<String> + Send + Sync;

/// Reverse DNS with a cache and a deadline.
pub struct Rdns {
    cache: Mutex<HashMap<IpAddr, Option<String>>>,
    deadline: Duration,
    slots: Arc<Semaphore>,
    resolve: Arc<Resolve>,
}

impl Rdns {
    /// Uses the system resolver (`getnameinfo`, which reads /etc/hosts too).
    pub fn system(deadline: Duration) -> Rdns {
        Rdns::with(deadline, Arc::new(|ip| dns_lookup::lookup_addr(&ip).ok()))
    }

    /// Uses `resolve` (tests count and stall lookups with it).
    pub fn with(deadline: Duration, resolve: Arc<Resolve>) -> Rdns {
        Rdns {
            cache: Mutex::new(HashMap::new()),
            deadline,
            slots: Arc::new(Semaphore::new(RDNS_IN_FLIGHT)),
            resolve,
        }
    }

    fn cached(&self, ip: IpAddr) -> Option<Option<String>> {
        self.cache.lock().ok()?.get(&ip).cloned()
    }

    /// The PTR name, from the cache or a lookup bounded by the deadline.
    /// A timeout is not cached (it may answer next time); "no name" is.
    pub async fn name(&self, ip: IpAddr) -> Option<String> {
        if let Some(hit) = self.cached(ip) {
            return hit;
        }
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        let resolve = self.resolve.clone();
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            resolve(ip)
        });
        let name = tokio::time::timeout(self.deadline, job).await.ok()?.ok()?;
        let name = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= RDNS_CACHE {
                c.clear();
            }
            c.insert(ip, name.clone());
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maxminddb_writer::paths::IpAddrWithMask;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(serde::Serialize)]
    struct Cc {
        iso_code: &'static str,
    }
    #[derive(serde::Serialize)]
    struct CountryDb {
        country: Cc,
    }
    #[derive(serde::Serialize)]
    struct AsnDb {
        autonomous_system_number: u32,
        autonomous_system_organization: &'static str,
    }

    /// Writes a MaxMind-format database holding `203.0.113.0/24` → `v`.
    fn db<T: serde::Serialize>(dir: &std::path::Path, name: &str, kind: &str, v: T) -> PathBuf {
        let mut d = maxminddb_writer::Database::default();
        d.metadata.database_type = kind.into();
        d.metadata.binary_format_major_version = 2;
        let r = d.insert_value(v).unwrap();
        d.insert_node("203.0.113.0/24".parse::<IpAddrWithMask>().unwrap(), r);
        let p = dir.join(name);
        d.write_to(std::fs::File::create(&p).unwrap()).unwrap();
        p
    }

    #[test]
    fn country_and_asn_come_from_local_databases_only() {
        let dir = tempfile::tempdir().unwrap();
        let c = db(
            dir.path(),
            "c.mmdb",
            "GeoLite2-Country",
            CountryDb {
                country: Cc { iso_code: "NL" },
            },
        );
        let a = db(
            dir.path(),
            "a.mmdb",
            "GeoLite2-ASN",
            AsnDb {
                autonomous_system_number: 64500,
                autonomous_system_organization: "Example Hosting",
            },
        );
        let g = Geo::open(&[c, a]).unwrap();
        let info = g.lookup("203.0.113.9".parse().unwrap());
        assert_eq!(
            info,
            GeoInfo {
                country: Some("NL".into()),
                asn: Some(64500),
                as_org: Some("Example Hosting".into())
            }
        );
        assert_eq!(g.lookup("198.51.100.1".parse().unwrap()), GeoInfo::default());
        assert!(Geo::open(&[]).unwrap().is_empty());
        let bad = dir.path().join("bad.mmdb");
        std::fs::write(&bad, b"not a database").unwrap();
        let e = Geo::open(&[bad]).unwrap_err().to_string();
        assert!(e.contains("bad.mmdb"), "{e}");
    }

    #[tokio::test]
    async fn rdns_is_cached_and_a_stalled_lookup_gives_up() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let r = Rdns::with(
            Duration::from_secs(5),
            Arc::new(move |ip: IpAddr| {
                c.fetch_add(1, Ordering::SeqCst);
                (ip.to_string() == "192.0.2.1").then(|| "Host.Example.".to_string())
            }),
        );
        for _ in 0..3 {
            assert_eq!(r.name("192.0.2.1".parse().unwrap()).await.as_deref(), Some("host.example"));
            assert_eq!(r.name("192.0.2.2".parse().unwrap()).await, None);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one lookup per address");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let stalled = Rdns::with(
            Duration::from_millis(50),
            Arc::new(move |_| {
                let _ = rx.lock().unwrap().recv();
                Some("late.example".into())
            }),
        );
        assert_eq!(stalled.name("192.0.2.3".parse().unwrap()).await, None);
        assert!(stalled.cached("192.0.2.3".parse().unwrap()).is_none(), "a timeout is not cached");
        drop(tx);
    }
}
