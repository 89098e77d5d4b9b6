//! Incidents (issue 20): the record that answers "the address that sprayed
//! our IMAP logins also sent phishing to three users".
//!
//! An incident opens on the first log-watch attack from an address. What
//! joins it, each as a timeline item saying why (`link`):
//! - later attacks from that address, or from the same ASN within a day of
//!   the incident's last activity;
//! - mail whose sender address (the trusted Received hop, an `ip`
//!   observable) is one of the incident's attacking addresses, whichever
//!   came first: an attack pulls in the mail already stored, stored mail
//!   joins the open incidents;
//! - mail Postern did not pass from a sender domain that the incident's mail
//!   used (a pass from a shared domain such as a freemail provider is not
//!   evidence and is left out);
//! - hits of log-watch indicators on that mail, and claw-backs of it.
//!
//! A closed incident takes nothing new: activity after it opens another.
//! Status changes are items with their actor, and audit rows.

use super::audit::{self, AuditEntry};
use super::{Result, Store};
use rusqlite::{OptionalExtension, Transaction, params};

/// An attack from another address of the same ASN joins an incident whose
/// last activity is at most this old.
const ASN_JOIN_SECS: i64 = 86_400;

/// Mail already stored that an attack pulls in, at most (newest first).
const PULL_MAIL: i64 = 200;

/// The statuses, in their usual order.
pub const INCIDENT_STATUSES: &[&str] = &["open", "acknowledged", "closed"];

/// An incident with its counts, for lists.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncidentRow {
    /// Id.
    pub id: i64,
    /// One line.
    pub title: String,
    /// open | acknowledged | closed.
    pub status: String,
    /// The attacking address that opened it.
    pub ip: String,
    /// Its AS number, when enrichment knew it.
    pub asn: Option<i64>,
    /// Its AS organisation.
    pub as_org: Option<String>,
    /// Its country code.
    pub country: Option<String>,
    /// Unix seconds of the first item.
    pub first_at: i64,
    /// Unix seconds of the latest item.
    pub last_at: i64,
    /// Attack items.
    pub attacks: i64,
    /// Mail items.
    pub mails: i64,
    /// IOC-hit items.
    pub ioc_hits: i64,
    /// Claw-back items.
    pub clawbacks: i64,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncidentItem {
    /// Id.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// attack | mail | ioc_hit | clawback | status.
    pub kind: String,
    /// The alert, message or op it stands for.
    pub target: Option<i64>,
    /// Why it belongs to the incident.
    pub link: String,
    /// Who changed the status.
    pub actor: Option<String>,
    /// One line.
    pub detail: String,
}

/// The attack that [`on_attack`] files.
pub(super) struct Attack<'a> {
    pub alert: i64,
    pub at: i64,
    pub ip: &'a str,
    pub asn: Option<u32>,
    pub as_org: Option<&'a str>,
    pub country: Option<&'a str>,
    pub detail: &'a str,
}

fn unix(now: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(now).map_or(0, |t| t.timestamp())
}

fn add_item(tx: &Transaction<'_>, incident: i64, at: i64, kind: &str, target: Option<i64>, link: &str, detail: &str) -> Result<bool> {
    let n = tx.execute(
        "INSERT OR IGNORE INTO incident_items (incident, at, kind, ref, link, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![incident, at, kind, target, link, detail],
    )?;
    if n > 0 {
        tx.execute(
            "UPDATE incidents SET first_at = MIN(first_at, ?2), last_at = MAX(last_at, ?2) WHERE id = ?1",
            params![incident, at],
        )?;
    }
    Ok(n > 0)
}

/// Files a stored log-watch attack: into the open incident for its address,
/// else one of the same ASN, else a new one; then pulls in the mail already
/// stored from that address. Returns the incident.
pub(super) fn on_attack(tx: &Transaction<'_>, now: &str, a: &Attack<'_>) -> Result<i64> {
    let by_ip: Option<i64> = tx
        .query_row(
            "SELECT id FROM incidents WHERE ip = ?1 AND status != 'closed' ORDER BY id DESC LIMIT 1",
            params![a.ip],
            |r| r.get(0),
        )
        .optional()?;
    let by_asn = || -> Result<Option<(i64, i64)>> {
        let Some(asn) = a.asn else { return Ok(None) };
        Ok(tx
            .query_row(
                "SELECT id, asn FROM incidents WHERE asn = ?1 AND status != 'closed' AND last_at >= ?2 ORDER BY id DESC LIMIT 1",
                params![asn, a.at - ASN_JOIN_SECS],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    };
    let (id, link) = if let Some(id) = by_ip {
        (id, format!("same address {}", a.ip))
    } else if let Some((id, asn)) = by_asn()? {
        (id, format!("same ASN AS{asn} as the incident, from {}", a.ip))
    } else {
        let org = match (a.asn, a.as_org) {
            (Some(n), Some(o)) => format!(" (AS{n} {o})"),
            (Some(n), None) => format!(" (AS{n})"),
            _ => String::new(),
        };
        tx.execute(
            "INSERT INTO incidents (title, ip, asn, as_org, country, first_at, last_at, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?7)",
            params![format!("Attacks from {}{org}", a.ip), a.ip, a.asn, a.as_org, a.country, a.at, now],
        )?;
        let id = tx.last_insert_rowid();
        audit::insert(
            tx,
            now,
            &AuditEntry {
                actor: "logwatch".into(),
                event: "incident_opened".into(),
                detail: format!("incident #{id}: attacks from {}", a.ip),
                ..Default::default()
            },
        )?;
        (id, format!("first attack from {}", a.ip))
    };
    add_item(tx, id, a.at, "attack", Some(a.alert), &link, a.detail)?;
    let earlier: Vec<i64> = {
        let mut st =
            tx.prepare_cached("SELECT o.message FROM observables o WHERE o.kind = 'ip' AND o.value = ?1 ORDER BY o.message DESC LIMIT ?2")?;
        st.query_map(params![a.ip, PULL_MAIL], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for m in earlier {
        link_message(tx, now, m)?;
    }
    tx.execute("UPDATE incidents SET updated_at = ?2 WHERE id = ?1", params![id, now])?;
    Ok(id)
}

/// What a mail item says: verdict, sender, mailbox and subject.
fn mail_detail(tx: &Transaction<'_>, message: i64) -> Result<Option<(i64, String, bool)>> {
    Ok(tx
        .query_row(
            "SELECT COALESCE(CAST(strftime('%s', first_seen) AS INTEGER), 0), COALESCE(verdict, 'undecided'),
                    COALESCE(from_addr, '(no sender)'), account, mailbox, COALESCE(subject, '')
             FROM messages WHERE id = ?1",
            params![message],
            |r| {
                let verdict: String = r.get(1)?;
                let detail = format!(
                    "{verdict}: mail from {} to {}/{}: {:?}",
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?
                );
                Ok((r.get(0)?, detail, verdict != "pass" && verdict != "undecided"))
            },
        )
        .optional()?)
}

/// Ties a stored message (and its log-watch IOC hits) to the open incidents
/// it belongs to, by address or by sender domain. Runs in the transaction
/// that stores the message's evidence, and again for each attack.
pub(super) fn link_message(tx: &Transaction<'_>, now: &str, message: i64) -> Result<()> {
    let Some((at, detail, suspicious)) = mail_detail(tx, message)? else {
        return Ok(());
    };
    let at = if at > 0 { at } else { unix(now) };
    let mut targets: Vec<(i64, String)> = {
        // Every incident address is an attack item's alert address (the
        // opening one too), so one indexed path finds them all.
        let mut st = tx.prepare_cached(
            "SELECT DISTINCT t.incident, o.value FROM observables o
             JOIN logwatch_alerts a ON a.ip = o.value
             JOIN incident_items t ON t.kind = 'attack' AND t.ref = a.id
             JOIN incidents i ON i.id = t.incident AND i.status != 'closed'
             WHERE o.message = ?1 AND o.kind = 'ip'",
        )?;
        st.query_map(params![message], |r| {
            Ok((r.get(0)?, format!("sent from attacking address {}", r.get::<_, String>(1)?)))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    if suspicious {
        let mut st = tx.prepare_cached(
            // From the open incidents' mail (few rows) to its domains, so
            // the big observables table is only read by primary key (a
            // freemail domain's millions of rows are never walked).
            "SELECT DISTINCT t.incident, o.value FROM incidents i
             JOIN incident_items t ON t.incident = i.id AND t.kind = 'mail' AND t.ref != ?1
             JOIN observables o2 ON o2.message = t.ref AND o2.kind = 'domain'
             JOIN observables o ON o.message = ?1 AND o.kind = 'domain' AND o.value = o2.value
             WHERE i.status != 'closed'",
        )?;
        let by_domain: Vec<(i64, String)> = st
            .query_map(params![message], |r| {
                Ok((r.get(0)?, format!("same sender domain {}", r.get::<_, String>(1)?)))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for t in by_domain {
            if !targets.iter().any(|(i, _)| *i == t.0) {
                targets.push(t);
            }
        }
    }
    for (incident, link) in targets {
        if add_item(tx, incident, at, "mail", Some(message), &link, &detail)? {
            tx.execute("UPDATE incidents SET updated_at = ?2 WHERE id = ?1", params![incident, now])?;
        }
    }
    // Log-watch indicator hits on this message, for each incident it is in.
    let hits: Vec<(i64, i64, String, String)> = {
        let mut st = tx.prepare_cached(
            "SELECT t.incident, s.id, s.kind, s.value FROM sightings s
             JOIN incident_items t ON t.kind = 'mail' AND t.ref = s.message
             JOIN incidents i ON i.id = t.incident AND i.status != 'closed'
             WHERE s.message = ?1 AND s.source = ?2",
        )?;
        st.query_map(params![message, crate::logwatch::IOC_SOURCE], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    for (incident, sighting, kind, value) in hits {
        let d = format!("the scan matched the log-watch indicator {kind} {value} on message #{message}");
        add_item(
            tx,
            incident,
            unix(now),
            "ioc_hit",
            Some(sighting),
            "indicator from this incident's attacks",
            &d,
        )?;
    }
    Ok(())
}

/// Files a claw-back (re-check op) of a message that is in incidents.
pub(super) fn on_clawback(tx: &Transaction<'_>, now: &str, message: i64, op: i64, reason: &str) -> Result<()> {
    let incidents: Vec<i64> = {
        let mut st = tx.prepare_cached(
            "SELECT t.incident FROM incident_items t JOIN incidents i ON i.id = t.incident AND i.status != 'closed'
             WHERE t.kind = 'mail' AND t.ref = ?1",
        )?;
        st.query_map(params![message], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    for incident in incidents {
        let d = format!("claw-back of message #{message}: {reason}");
        add_item(tx, incident, unix(now), "clawback", Some(op), "its mail was re-checked", &d)?;
    }
    Ok(())
}

const ROW: &str = "SELECT i.id, i.title, i.status, i.ip, i.asn, i.as_org, i.country, i.first_at, i.last_at,
    (SELECT COUNT(*) FROM incident_items t WHERE t.incident = i.id AND t.kind = 'attack'),
    (SELECT COUNT(*) FROM incident_items t WHERE t.incident = i.id AND t.kind = 'mail'),
    (SELECT COUNT(*) FROM incident_items t WHERE t.incident = i.id AND t.kind = 'ioc_hit'),
    (SELECT COUNT(*) FROM incident_items t WHERE t.incident = i.id AND t.kind = 'clawback')
  FROM incidents i";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRow> {
    Ok(IncidentRow {
        id: r.get(0)?,
        title: r.get(1)?,
        status: r.get(2)?,
        ip: r.get(3)?,
        asn: r.get(4)?,
        as_org: r.get(5)?,
        country: r.get(6)?,
        first_at: r.get(7)?,
        last_at: r.get(8)?,
        attacks: r.get(9)?,
        mails: r.get(10)?,
        ioc_hits: r.get(11)?,
        clawbacks: r.get(12)?,
    })
}

impl Store {
    /// Incidents, latest activity first; `status` filters.
    pub async fn incidents(&self, status: Option<String>, limit: u32) -> Result<Vec<IncidentRow>> {
        self.call(move |db, _| {
            let mut st = db.prepare(&format!(
                "{ROW} WHERE (?1 IS NULL OR i.status = ?1) ORDER BY i.last_at DESC, i.id DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![status, limit], row)?.collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    /// One incident with its timeline, oldest first.
    pub async fn incident(&self, id: i64) -> Result<Option<(IncidentRow, Vec<IncidentItem>)>> {
        self.call(move |db, _| {
            let Some(head) = db.query_row(&format!("{ROW} WHERE i.id = ?1"), params![id], row).optional()? else {
                return Ok(None);
            };
            let mut st =
                db.prepare("SELECT id, at, kind, ref, link, actor, detail FROM incident_items WHERE incident = ?1 ORDER BY at, id")?;
            let items = st
                .query_map(params![id], |r| {
                    Ok(IncidentItem {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        kind: r.get(2)?,
                        target: r.get(3)?,
                        link: r.get(4)?,
                        actor: r.get(5)?,
                        detail: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some((head, items)))
        })
        .await
    }

    /// Sets an incident's status, with a timeline item and an audit row.
    /// `Ok(false)`: no such incident; an unknown status is refused by the
    /// caller (runtime), and unchanged statuses record nothing.
    pub async fn set_incident_status(&self, id: i64, status: &str, actor: &str, note: &str) -> Result<bool> {
        let (status, actor, note) = (status.to_string(), actor.to_string(), note.trim().to_string());
        self.call(move |db, ctx| {
            let tx = db.transaction()?;
            let Some(old): Option<String> = tx
                .query_row("SELECT status FROM incidents WHERE id = ?1", params![id], |r| r.get(0))
                .optional()?
            else {
                return Ok(false);
            };
            if old == status {
                return Ok(true);
            }
            tx.execute(
                "UPDATE incidents SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status, ctx.now],
            )?;
            let mut detail = format!("{old} → {status}");
            if !note.is_empty() {
                detail.push_str(&format!(": {note}"));
            }
            tx.execute(
                "INSERT INTO incident_items (incident, at, kind, ref, link, actor, detail) VALUES (?1, ?2, 'status', NULL, 'status change', ?3, ?4)",
                params![id, unix(&ctx.now), actor, detail],
            )?;
            audit::insert(
                &tx,
                &ctx.now,
                &AuditEntry {
                    actor: actor.clone(),
                    event: "incident_status".into(),
                    detail: format!("incident #{id}: {detail}"),
                    ..Default::default()
                },
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
