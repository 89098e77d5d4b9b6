//! Readers for each feed's download format.
//!
//! A feed body that cannot be read as its format is an error, never an empty
//! success: an error page or a truncated download replacing a good list with
//! nothing would silently switch the feed off. A handful of unreadable rows in
//! an otherwise good body are skipped; a body where they are the majority is
//! not the format it claims to be.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use url::Url;

use super::Format;
use crate::intel::{FeedEntry, IntelError, Kind};

/// Reads a feed body into its entries (deduplicated, in feed order).
pub fn parse(format: Format, body: &[u8]) -> Result<Vec<FeedEntry>, IntelError> {
    let source = format.source();
    let text = std::str::from_utf8(body).map_err(|e| bad(source, format!("not UTF-8 text ({e})")))?;
    // A UTF-8 byte-order mark would hide the first comment marker or bracket.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Collector::new(source);
    match format {
        Format::UrlhausCsv => urlhaus(text, &mut out)?,
        Format::OpenPhishText => openphish(text, &mut out),
        Format::PhishTankJson => phishtank(text, &mut out)?,
        Format::ThreatFoxJson => threatfox(text, &mut out)?,
        Format::MalwareBazaarCsv => malwarebazaar(text, &mut out)?,
    }
    out.finish()
}

fn bad(source: &str, detail: impl Into<String>) -> IntelError {
    IntelError::Format {
        source_name: source.to_string(),
        detail: detail.into(),
    }
}

/// Gathers entries and counts the rows that could not be read.
struct Collector {
    source: &'static str,
    entries: Vec<FeedEntry>,
    seen: HashSet<FeedEntry>,
    good: usize,
    skipped: usize,
    bad: usize,
    first_bad: Option<String>,
}

impl Collector {
    fn new(source: &'static str) -> Self {
        Self {
            source,
            entries: Vec::new(),
            seen: HashSet::new(),
            good: 0,
            skipped: 0,
            bad: 0,
            first_bad: None,
        }
    }

    fn push(&mut self, kind: Kind, value: String) {
        self.good += 1;
        let entry = FeedEntry { kind, value };
        if self.seen.insert(entry.clone()) {
            self.entries.push(entry);
        }
    }

    /// A row that was read and deliberately left out (offline, md5) is
    /// neither good nor bad.
    fn skip(&mut self) {
        self.skipped += 1;
    }

    fn reject(&mut self, why: impl FnOnce() -> String) {
        self.bad += 1;
        if self.first_bad.is_none() {
            self.first_bad = Some(why());
        }
    }

    fn finish(self) -> Result<Vec<FeedEntry>, IntelError> {
        if self.bad > self.good {
            return Err(bad(
                self.source,
                format!(
                    "{} of {} rows unreadable, first: {}",
                    self.bad,
                    self.bad + self.good,
                    self.first_bad.unwrap_or_default()
                ),
            ));
        }
        tracing::debug!(
            feed = self.source,
            entries = self.entries.len(),
            skipped = self.skipped,
            "feed read"
        );
        if self.bad > 0 {
            tracing::warn!(
                feed = self.source,
                skipped = self.bad,
                first = self.first_bad.as_deref().unwrap_or_default(),
                "feed rows skipped"
            );
        }
        Ok(self.entries)
    }
}

/// An http(s) URL with a host, as given (trimmed); `None` for anything else.
fn web_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let u = Url::parse(raw).ok()?;
    (matches!(u.scheme(), "http" | "https") && u.host().is_some()).then(|| raw.to_string())
}

/// Describes a rejected value without quoting it. Feed errors end up on
/// the `/health` page, and a feed (or whoever answers at its URL) must not
/// be able to put its own text there (issue 16).
fn short(s: &str) -> String {
    format!("<{} bytes, not shown>", s.len())
}

/// A serde_json error without the value it quotes ("invalid type: string
/// \"…\"" would echo the body).
fn json_error(e: &serde_json::Error) -> String {
    format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column())
}

/// The abuse.ch CSV dumps: a `#` comment block that carries the column
/// header as its own comment line, then data rows.
struct CommentedCsv<'a> {
    columns: Vec<String>,
    text: &'a str,
}

impl<'a> CommentedCsv<'a> {
    /// Finds the column header among the comment lines (the last one that
    /// names every `required` column). `Ok(None)`: a comment-only body, i.e.
    /// a valid feed with nothing in it.
    fn open(source: &str, text: &'a str, required: &[&str]) -> Result<Option<Self>, IntelError> {
        let mut comments = 0;
        let mut data = false;
        let mut columns = None;
        for line in text.lines() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix('#') {
                comments += 1;
                let fields = csv_fields(comment.trim());
                if required.iter().all(|r| fields.iter().any(|f| f == r)) {
                    columns = Some(fields);
                }
            } else if !line.is_empty() {
                data = true;
            }
        }
        match columns {
            Some(columns) => Ok(Some(Self { columns, text })),
            None if comments > 0 && !data => Ok(None),
            None if comments == 0 && !data => Err(bad(source, "empty body, not even the comment header")),
            None => Err(bad(
                source,
                format!("no column header naming {} in the comment block", required.join(", ")),
            )),
        }
    }

    /// Where a required column is (`open` checked that it exists).
    fn column(&self, name: &str) -> usize {
        self.columns.iter().position(|c| c == name).unwrap_or_default()
    }

    /// Each data row, or why it could not be read.
    fn rows(&self) -> impl Iterator<Item = Result<csv::StringRecord, String>> + '_ {
        let width = self.columns.len();
        csv::ReaderBuilder::new()
            .has_headers(false)
            .comment(Some(b'#'))
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(self.text.as_bytes())
            .into_records()
            .map(move |r| match r {
                Ok(rec) if rec.len() == width => Ok(rec),
                Ok(rec) => Err(format!(
                    "row {} has {} fields, the header names {width}",
                    rec.position().map_or(0, |p| p.line()),
                    rec.len()
                )),
                Err(e) => Err(e.to_string()),
            })
    }
}

/// The fields of one CSV line (the header inside a comment).
fn csv_fields(line: &str) -> Vec<String> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

fn urlhaus(text: &str, out: &mut Collector) -> Result<(), IntelError> {
    let Some(csv) = CommentedCsv::open(out.source, text, &["url", "url_status"])? else {
        return Ok(());
    };
    let (url_col, status_col) = (csv.column("url"), csv.column("url_status"));
    for row in csv.rows() {
        let row = match row {
            Ok(row) => row,
            Err(why) => {
                out.reject(|| why);
                continue;
            }
        };
        let raw = row.get(url_col).unwrap_or_default();
        let status = row.get(status_col).unwrap_or_default();
        // Only offline is dropped: "unknown" URLs may well still serve malware.
        if status.eq_ignore_ascii_case("offline") {
            out.skip();
        } else if let Some(u) = web_url(raw) {
            out.push(Kind::Url, u);
        } else {
            out.reject(|| format!("not an http(s) URL: {}", short(raw)));
        }
    }
    Ok(())
}

fn openphish(text: &str, out: &mut Collector) {
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match web_url(line) {
            Some(u) => out.push(Kind::Url, u),
            None => out.reject(|| format!("not an http(s) URL: {}", short(line))),
        }
    }
}

#[derive(Deserialize)]
struct Phish {
    url: String,
    verified: String,
    online: String,
}

fn phishtank(text: &str, out: &mut Collector) -> Result<(), IntelError> {
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| bad(out.source, format!("not a JSON array: {}", json_error(&e))))?;
    for row in rows {
        match serde_json::from_value::<Phish>(row) {
            Ok(p) if p.verified != "yes" || p.online != "yes" => out.skip(),
            Ok(p) => match web_url(&p.url) {
                Some(u) => out.push(Kind::Url, u),
                None => out.reject(|| format!("not an http(s) URL: {}", short(&p.url))),
            },
            Err(e) => out.reject(|| format!("not a phish record: {}", json_error(&e))),
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct ThreatFoxIoc {
    ioc_value: String,
    ioc_type: String,
}

fn threatfox(text: &str, out: &mut Collector) -> Result<(), IntelError> {
    let by_id: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| bad(out.source, format!("not a JSON object of IOC ids: {}", json_error(&e))))?;
    for (id, iocs) in by_id {
        // An error answer ({"query_status": "..."}) has a string here, not a list.
        let Ok(iocs) = serde_json::from_value::<Vec<ThreatFoxIoc>>(iocs) else {
            out.reject(|| format!("{}: not a list of IOCs", short(&id)));
            continue;
        };
        for ioc in iocs {
            threatfox_ioc(&ioc, out);
        }
    }
    Ok(())
}

fn threatfox_ioc(ioc: &ThreatFoxIoc, out: &mut Collector) {
    let v = ioc.ioc_value.trim();
    let why = || format!("{} is not a valid value for its IOC type", short(v));
    match ioc.ioc_type.as_str() {
        "url" => match web_url(v) {
            Some(u) => out.push(Kind::Url, u),
            None => out.reject(why),
        },
        "domain" => match url::Host::parse(v) {
            Ok(url::Host::Domain(_)) => out.push(Kind::Domain, v.to_string()),
            Ok(url::Host::Ipv4(ip)) => out.push(Kind::Ip, ip.to_string()),
            _ => out.reject(why),
        },
        "ip:port" => match ip_of_ip_port(v) {
            Some(ip) => out.push(Kind::Ip, ip.to_string()),
            None => out.reject(why),
        },
        "sha256_hash" => match sha256_hex(v) {
            Some(h) => out.push(Kind::Sha256, h),
            None => out.reject(why),
        },
        // md5/sha1 are not what attachments are indexed by; newer types are
        // simply not ours to read yet.
        _ => out.skip(),
    }
}

/// The address of an `ip:port` IOC: `192.0.2.1:80`, `[2001:db8::1]:443`, or
/// an unbracketed `2001:db8::1:443` (the type says a port is always there).
fn ip_of_ip_port(v: &str) -> Option<IpAddr> {
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    if let Some((ip, port)) = v.rsplit_once(':')
        && port.parse::<u16>().is_ok()
        && let Ok(ip) = ip.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>()
    {
        return Some(ip);
    }
    v.parse::<IpAddr>().ok()
}

/// Lower-case SHA-256 hex, or `None` if `v` is not 64 hex digits.
fn sha256_hex(v: &str) -> Option<String> {
    let v = v.trim();
    (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
}

fn malwarebazaar(text: &str, out: &mut Collector) -> Result<(), IntelError> {
    // The rows are separated by `", "`. RFC 4180 readers (the csv crate has no
    // skip-initial-space) see the quote after the space as a literal, which
    // splits file names that contain commas; joining the separator back to
    // `","` makes every row plain quoted CSV.
    let text = text.replace("\", \"", "\",\"");
    let Some(csv) = CommentedCsv::open(out.source, &text, &["sha256_hash"])? else {
        return Ok(());
    };
    let col = csv.column("sha256_hash");
    for row in csv.rows() {
        match row {
            Ok(row) => {
                let v = row.get(col).unwrap_or_default();
                match sha256_hex(v) {
                    Some(h) => out.push(Kind::Sha256, h),
                    None => out.reject(|| format!("not a SHA-256: {}", short(v))),
                }
            }
            Err(why) => out.reject(|| why),
        }
    }
    Ok(())
}
