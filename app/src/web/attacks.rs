//! The attacks page, its API and CSV exports (issue 20, outputs): who is
//! knocking on the mail server's logins (attackers with attempts, users
//! tried, country, ASN, first and last seen, indicator status), the most
//! tried users, countries and ASNs, per-day charts, and a link to the
//! incidents that tie attackers to mail. Charts are server-side SVG
//! (`chart`), so the page runs no script.

use super::auth::Admin;
use super::chart;
use super::error::html_error;
use super::export::{PAGE, Rows, csv_response, paged, text};
use super::security::Nonce;
use super::templates::{PageCx, render};
use super::{AppState, WebError};
use crate::runtime::attacks::{AttackQuery, AttackerRow, AttacksView, DayShare};
use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::Response;
use minijinja::context;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Series of the country and ASN charts; the rest is "other".
const CHART_SERIES: usize = 5;

fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// Every day of the period, oldest first, so quiet days show as gaps.
fn period_days(st: &AppState, days: i64) -> Vec<String> {
    let today = st.rt.now().date_naive();
    (0..days)
        .rev()
        .map(|back| (today - chrono::Duration::days(back)).format("%Y-%m-%d").to_string())
        .collect()
}

/// The busiest names get a series each, the rest one "other" series.
fn share_series(days: &[String], shares: &[DayShare]) -> Vec<(String, Vec<i64>)> {
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for s in shares {
        *totals.entry(&s.name).or_default() += s.count;
    }
    let mut names: Vec<(&str, i64)> = totals.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let kept: Vec<&str> = names.iter().take(CHART_SERIES).map(|(n, _)| *n).collect();
    let index: BTreeMap<&str, usize> = days.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
    let mut out: Vec<(String, Vec<i64>)> = kept.iter().map(|n| (n.to_string(), vec![0; days.len()])).collect();
    let mut other = vec![0; days.len()];
    for s in shares {
        let Some(&i) = index.get(s.day.as_str()) else { continue };
        match kept.iter().position(|n| *n == s.name) {
            Some(k) => out[k].1[i] += s.count,
            None => other[i] += s.count,
        }
    }
    if other.iter().any(|n| *n > 0) {
        out.push(("other".into(), other));
    }
    out
}

/// The four charts: failed logins; addresses and users; by country; by ASN.
fn charts(st: &AppState, v: &AttacksView) -> [minijinja::Value; 4] {
    let days = period_days(st, v.days);
    let by_day: BTreeMap<&str, _> = v.series.iter().map(|d| (d.day.as_str(), d)).collect();
    let pick = |f: fn(&crate::runtime::attacks::AttackDay) -> i64| -> Vec<i64> {
        days.iter().map(|d| by_day.get(d.as_str()).copied().map_or(0, f)).collect()
    };
    [
        chart::stacked_bars("Failed logins per day", &days, &[("failed logins".into(), pick(|d| d.attempts))]),
        chart::stacked_bars(
            "Attacking addresses and targeted users per day",
            &days,
            &[
                ("attacking addresses".into(), pick(|d| d.attackers)),
                ("user names tried".into(), pick(|d| d.users)),
            ],
        ),
        chart::stacked_bars("Attacking addresses per day by country", &days, &share_series(&days, &v.by_country)),
        chart::stacked_bars("Attacking addresses per day by ASN", &days, &share_series(&days, &v.by_asn)),
    ]
}

fn attacker_json(a: &AttackerRow) -> Value {
    json!({ "a": a, "first": when(a.first_seen), "last": when(a.last_seen) })
}

/// The query string of the current filters, for the export links.
fn filter_query(q: &AttackQuery) -> String {
    let mut parts = vec![format!("days={}", q.days())];
    for (k, v) in [("ip", &q.ip), ("user", &q.user), ("country", &q.country)] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            parts.push(format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.trim().as_bytes()).collect::<String>()
            ));
        }
    }
    parts.join("&")
}

pub(crate) async fn page(
    State(st): State<AppState>,
    Extension(nonce): Extension<Nonce>,
    Extension(admin): Extension<Admin>,
    Query(q): Query<AttackQuery>,
) -> Response {
    let cx = PageCx::admin(&nonce, &admin, "attacks");
    async {
        let v = st.rt.attacks_view(&q).await?;
        let [attempts_chart, people_chart, countries_chart, asns_chart] = charts(&st, &v);
        let attackers: Vec<Value> = v.attackers.iter().map(attacker_json).collect();
        let (days, export) = (q.days(), filter_query(&q));
        Ok::<_, WebError>(render(
            &st,
            "attacks.html",
            &cx,
            context! {
                v, attackers, q, days, export,
                attempts_chart, people_chart, countries_chart, asns_chart,
            },
        ))
    }
    .await
    .unwrap_or_else(html_error)
}

/// `GET /api/attacks`: the page's data as JSON.
pub(crate) async fn api(State(st): State<AppState>, Query(q): Query<AttackQuery>) -> Result<Json<AttacksView>, WebError> {
    Ok(Json(st.rt.attacks_view(&q).await?))
}

const ATTEMPT_COLUMNS: &[&str] = &["id", "time", "source", "service", "outcome", "ip", "user", "attempts"];

/// `GET /export/attempts.csv`: the authentication events under the page's filters.
pub(crate) async fn attempts_csv(State(st): State<AppState>, Query(q): Query<AttackQuery>) -> Result<Response, WebError> {
    let f = st.rt.attack_filter(&q)?;
    let rt = st.rt.clone();
    let body = paged(ATTEMPT_COLUMNS, move |before| {
        let (rt, f) = (rt.clone(), f.clone());
        async move {
            let rows = rt.attack_attempts(&f, before, PAGE).await?;
            let more = (rows.len() == PAGE as usize).then(|| rows.last().map(|r| r.id)).flatten();
            let out: Rows = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        when_secs(r.at),
                        text(Some(&r.source)),
                        text(Some(&r.service)),
                        text(Some(&r.outcome)),
                        text(Some(&r.ip)),
                        text(r.user.as_deref()),
                        r.attempts.to_string(),
                    ]
                })
                .collect();
            Ok((out, more))
        }
    });
    Ok(csv_response(&st, "attempts", body))
}

fn when_secs(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(String::new, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

const ATTACKER_COLUMNS: &[&str] = &[
    "ip",
    "attempts",
    "users",
    "alerts",
    "country",
    "asn",
    "as_org",
    "first_seen",
    "last_seen",
    "ioc",
    "ioc_expires",
];

/// `GET /export/attackers.csv`: the attackers under the page's filters.
pub(crate) async fn attackers_csv(State(st): State<AppState>, Query(q): Query<AttackQuery>) -> Result<Response, WebError> {
    let f = st.rt.attack_filter(&q)?;
    let rt = st.rt.clone();
    let body = paged(ATTACKER_COLUMNS, move |offset| {
        let (rt, f) = (rt.clone(), f.clone());
        async move {
            let offset = offset.unwrap_or(0);
            let rows = rt.attackers_page(&f, offset, PAGE).await?;
            let more = (rows.len() == PAGE as usize).then_some(offset + PAGE as i64);
            let out: Rows = rows
                .iter()
                .map(|a| {
                    vec![
                        text(Some(&a.ip)),
                        a.attempts.to_string(),
                        a.users.to_string(),
                        a.alerts.to_string(),
                        text(a.country.as_deref()),
                        a.asn.map(|n| n.to_string()).unwrap_or_default(),
                        text(a.as_org.as_deref()),
                        when_secs(a.first_seen),
                        when_secs(a.last_seen),
                        text(Some(&a.ioc)),
                        text(a.ioc_expires.as_deref()),
                    ]
                })
                .collect();
            Ok((out, more))
        }
    });
    Ok(csv_response(&st, "attackers", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_names_get_a_series_and_the_rest_is_other() {
        let days = vec!["2026-12-01".to_string(), "2026-12-02".to_string()];
        let share = |day: &str, name: &str, count| DayShare {
            day: day.into(),
            name: name.into(),
            count,
        };
        let mut shares: Vec<DayShare> = (0..7).map(|i| share("2026-12-02", &format!("C{i}"), 10 - i)).collect();
        shares.push(share("2026-12-01", "C0", 2));
        shares.push(share("2020-01-01", "C0", 99));
        let s = share_series(&days, &shares);
        assert_eq!(s.len(), CHART_SERIES + 1);
        assert_eq!(s[0], ("C0".to_string(), vec![2, 10]), "days outside the period are left out");
        assert_eq!(s.last().unwrap(), &("other".to_string(), vec![0, 4 + 5]));
    }

    #[test]
    fn export_links_keep_the_filters_encoded() {
        let q = AttackQuery {
            days: Some(30),
            ip: Some("203.0.113.9".into()),
            user: Some("a b&c".into()),
            country: Some(" ".into()),
        };
        assert_eq!(filter_query(&q), "days=30&ip=203.0.113.9&user=a+b%26c");
    }
}
