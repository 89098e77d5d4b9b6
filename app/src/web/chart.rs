//! Server-rendered SVG charts: no chart library, no script, nothing inline
//! that the CSP would have to allow. Only numbers and our own date labels go
//! into the markup.

use crate::runtime::records::DayCounts;
use minijinja::Value;
use std::fmt::Write as _;

const W: f64 = 900.0;
const H: f64 = 220.0;
const PAD_L: f64 = 40.0;
const PAD_B: f64 = 24.0;

/// Stacked bars per day: pass, flag, junk, quarantine, delete (bottom to top).
pub(crate) fn verdict_bars(days: &[DayCounts]) -> Value {
    let max = days
        .iter()
        .map(|d| d.pass + d.flag + d.junk + d.quarantine + d.delete)
        .max()
        .unwrap_or(0)
        .max(1);
    let n = days.len().max(1) as f64;
    let slot = (W - PAD_L) / n;
    let bar = (slot * 0.7).max(1.0);
    let plot_h = H - PAD_B - 8.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {H}" class="w-full h-auto" role="img" aria-label="Verdicts per day, last {} days">"#,
        days.len()
    );
    for frac in [0.0, 0.5, 1.0] {
        let y = 8.0 + plot_h * (1.0 - frac);
        let label = (max as f64 * frac).round() as i64;
        let _ = write!(
            s,
            r##"<line x1="{PAD_L}" x2="{W}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#6b7280">{label}</text>"##,
            PAD_L - 4.0,
            y + 3.0
        );
    }
    for (i, d) in days.iter().enumerate() {
        let x = PAD_L + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = 8.0 + plot_h;
        for (count, color) in [
            (d.pass, "#16a34a"),
            (d.flag, "#d97706"),
            (d.junk, "#a16207"),
            (d.quarantine, "#ea580c"),
            (d.delete, "#dc2626"),
        ] {
            if count == 0 {
                continue;
            }
            let h = plot_h * count as f64 / max as f64;
            y -= h;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{color}"/>"#
            );
        }
        let total = d.pass + d.flag + d.junk + d.quarantine + d.delete;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="8" width="{slot:.1}" height="{plot_h:.1}" fill="transparent"><title>{}: {total} messages ({} pass, {} flag, {} junk, {} quarantine, {} delete)</title></rect>"#,
            PAD_L + slot * i as f64,
            escape(&d.day),
            d.pass,
            d.flag,
            d.junk,
            d.quarantine,
            d.delete
        );
        if i % 5 == 0 || i + 1 == days.len() {
            let label: String = d.day.chars().skip(5).collect();
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#6b7280">{}</text>"##,
                x + bar / 2.0,
                H - 8.0,
                escape(&label)
            );
        }
    }
    s.push_str("</svg>");
    Value::from_safe_string(s)
}

/// Colours of [`stacked_bars`]' series, bottom to top; the last is "other".
const PALETTE: &[&str] = &["#dc2626", "#ea580c", "#d97706", "#2563eb", "#7c3aed", "#9ca3af"];

/// Stacked bars per day, one colour per series, with the legend drawn in
/// the SVG (an HTML legend would need inline colours). `series` gives each
/// name its value per entry of `days`.
pub(crate) fn stacked_bars(label: &str, days: &[String], series: &[(String, Vec<i64>)]) -> Value {
    let total = |i: usize| series.iter().map(|(_, v)| v.get(i).copied().unwrap_or(0).max(0)).sum::<i64>();
    let max = (0..days.len()).map(total).max().unwrap_or(0).max(1);
    let n = days.len().max(1) as f64;
    let slot = (W - PAD_L) / n;
    let bar = (slot * 0.7).max(1.0);
    let legend_h = 16.0;
    let plot_h = H - PAD_B - 8.0 - legend_h;
    let top = 8.0 + legend_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {H}" class="w-full h-auto" role="img" aria-label="{}">"#,
        escape(label)
    );
    let mut lx = PAD_L;
    for (k, (name, _)) in series.iter().enumerate() {
        let color = PALETTE[k.min(PALETTE.len() - 1)];
        let _ = write!(
            s,
            r##"<rect x="{lx:.1}" y="4" width="10" height="10" fill="{color}"/><text x="{:.1}" y="13" font-size="10" fill="#374151">{}</text>"##,
            lx + 14.0,
            escape(name)
        );
        lx += 24.0 + 6.0 * name.chars().count().min(30) as f64;
    }
    for frac in [0.0, 0.5, 1.0] {
        let y = top + plot_h * (1.0 - frac);
        let v = (max as f64 * frac).round() as i64;
        let _ = write!(
            s,
            r##"<line x1="{PAD_L}" x2="{W}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e7eb"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#6b7280">{v}</text>"##,
            PAD_L - 4.0,
            y + 3.0
        );
    }
    for (i, day) in days.iter().enumerate() {
        let x = PAD_L + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        let mut parts = Vec::new();
        for (k, (name, values)) in series.iter().enumerate() {
            let count = values.get(i).copied().unwrap_or(0).max(0);
            if count == 0 {
                continue;
            }
            parts.push(format!("{count} {name}"));
            let h = plot_h * count as f64 / max as f64;
            y -= h;
            let color = PALETTE[k.min(PALETTE.len() - 1)];
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{color}"/>"#
            );
        }
        let what = if parts.is_empty() { "none".to_string() } else { parts.join(", ") };
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{top:.1}" width="{slot:.1}" height="{plot_h:.1}" fill="transparent"><title>{}: {}</title></rect>"#,
            PAD_L + slot * i as f64,
            escape(day),
            escape(&what)
        );
        if i % 5 == 0 || i + 1 == days.len() {
            let short: String = day.chars().skip(5).collect();
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#6b7280">{}</text>"##,
                x + bar / 2.0,
                H - 8.0,
                escape(&short)
            );
        }
    }
    s.push_str("</svg>");
    Value::from_safe_string(s)
}

fn escape(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day() {
        let days = vec![
            DayCounts {
                day: "2026-11-01".into(),
                pass: 10,
                quarantine: 10,
                ..Default::default()
            },
            DayCounts {
                day: "2026-11-02".into(),
                ..Default::default()
            },
        ];
        let svg = verdict_bars(&days).to_string();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(r##"fill="#16a34a""##) && svg.contains(r##"fill="#ea580c""##));
        assert!(svg.contains("2026-11-02: 0 messages"));
        assert!(!svg.contains("style="), "no inline styles: the CSP forbids them");
    }

    #[test]
    fn stacked_series_carry_their_names_escaped_and_their_counts() {
        let days = vec!["2026-12-01".to_string(), "2026-12-02".to_string()];
        let series = vec![("NL".to_string(), vec![2, 0]), ("<b>".to_string(), vec![1, 3])];
        let svg = stacked_bars("Attackers per day", &days, &series).to_string();
        assert!(svg.contains("2026-12-01: 2 NL, 1 &lt;b&gt;"), "{svg}");
        assert!(svg.contains("2026-12-02: 3 &lt;b&gt;"));
        assert!(!svg.contains("<b>") && !svg.contains("style=") && !svg.contains("<script"));
    }
}
