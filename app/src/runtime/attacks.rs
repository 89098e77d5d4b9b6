//! The attacks dashboard (issue 20, outputs): the verbs the web layer calls
//! for attackers, attempts, per-day series and their CSV exports. Filters
//! arrive as the page's query ([`AttackQuery`]) and become a store filter
//! on the injected clock.

use super::{Runtime, RuntimeError};
pub use crate::store::{AttackDay, AttackFilter, AttackerRow, AttemptRow, DayShare, NamedCount};

/// Days the page covers unless asked otherwise, and at most.
const DEFAULT_DAYS: i64 = 7;
const MAX_DAYS: i64 = 90;
/// Rows of each "top" table.
const TOP: u32 = 10;

/// The attacks page's filters, as its query string carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct AttackQuery {
    /// Days back from now (1–90, default 7).
    #[serde(default)]
    pub days: Option<i64>,
    /// One address.
    #[serde(default)]
    pub ip: Option<String>,
    /// One user name.
    #[serde(default)]
    pub user: Option<String>,
    /// One country code.
    #[serde(default)]
    pub country: Option<String>,
}

impl AttackQuery {
    /// The days covered, clamped.
    pub fn days(&self) -> i64 {
        self.days.unwrap_or(DEFAULT_DAYS).clamp(1, MAX_DAYS)
    }
}

/// Everything the attacks page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttacksView {
    /// Days covered.
    pub days: i64,
    /// Attackers matching the filters, busiest first.
    pub attackers: Vec<AttackerRow>,
    /// Per day: attempts, attackers and users tried (unfiltered, the whole period).
    pub series: Vec<AttackDay>,
    /// Per day, attacking addresses by country.
    pub by_country: Vec<DayShare>,
    /// Per day, attacking addresses by ASN.
    pub by_asn: Vec<DayShare>,
    /// Most tried user names.
    pub users: Vec<NamedCount>,
    /// Countries with the most attacking addresses.
    pub countries: Vec<NamedCount>,
    /// ASNs with the most attacking addresses.
    pub asns: Vec<NamedCount>,
    /// Open (not closed) incidents.
    pub open_incidents: usize,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

impl Runtime {
    /// The store filter for `q`, counted back from now.
    pub fn attack_filter(&self, q: &AttackQuery) -> Result<AttackFilter, RuntimeError> {
        let ip = nonempty(&q.ip);
        if let Some(ip) = &ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(RuntimeError::Invalid(format!("{ip:?} is not an IP address")));
        }
        Ok(AttackFilter {
            since: self.clock.now().timestamp() - q.days() * 86_400,
            ip,
            user: nonempty(&q.user),
            country: nonempty(&q.country).map(|c| c.to_ascii_uppercase()),
        })
    }

    /// The attacks page: attackers under `q`'s filters, and the period's
    /// series and tops.
    pub async fn attacks_view(&self, q: &AttackQuery) -> Result<AttacksView, RuntimeError> {
        let f = self.attack_filter(q)?;
        let since = f.since;
        let attackers = self.store.logwatch_attackers(f, 500).await?;
        let (users, countries, asns) = self.store.logwatch_tops(since, TOP).await?;
        let open_incidents = self
            .store
            .incidents(None, 1000)
            .await?
            .iter()
            .filter(|i| i.status != "closed")
            .count();
        Ok(AttacksView {
            days: q.days(),
            attackers,
            series: self.store.logwatch_days(since).await?,
            by_country: self.store.logwatch_day_shares(since, false).await?,
            by_asn: self.store.logwatch_day_shares(since, true).await?,
            users,
            countries,
            asns,
            open_incidents,
        })
    }

    /// One page of attempts under `f`, newest first, ids below `before`.
    pub async fn attack_attempts(&self, f: &AttackFilter, before: Option<i64>, limit: u32) -> Result<Vec<AttemptRow>, RuntimeError> {
        Ok(self.store.logwatch_attempts(f.clone(), before, limit.clamp(1, 1000)).await?)
    }

    /// One page of attackers under `f`, in address order, from `offset`.
    pub async fn attackers_page(&self, f: &AttackFilter, offset: i64, limit: u32) -> Result<Vec<AttackerRow>, RuntimeError> {
        Ok(self
            .store
            .logwatch_attackers_page(f.clone(), offset.max(0), limit.clamp(1, 1000))
            .await?)
    }
}
