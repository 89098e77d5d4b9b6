//! More of the stats page in the way of Rspamd's UI (issue 22): which
//! engines' findings contributed, the URL domains mail pointed at and the
//! attachment types it carried. Each is one GROUP BY over the period's
//! messages (the `first_seen` index) and their observables (keyed by
//! message), never a scan of every stored message.

use super::views::Count;
use super::{Result, Store};
use rusqlite::params;

/// The top-N tables of the stats page.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TopStats {
    /// Per engine: messages it found something in, and of them not passed.
    pub by_engine: Vec<Count>,
    /// URL host names: messages linking there, and of them not passed.
    pub url_domains: Vec<Count>,
    /// Attachment types (extension, else declared MIME type).
    pub attachment_types: Vec<Count>,
}

const ENGINES: &str = "SELECT json_extract(r.value, '$.scanner') AS k, COUNT(DISTINCT m.id),
       COUNT(DISTINCT CASE WHEN m.verdict <> 'pass' THEN m.id END)
     FROM messages m, json_each(m.scan_json) r
     WHERE m.first_seen >= ?1 AND m.status <> 'known' AND json_valid(m.scan_json)
       AND json_array_length(r.value, '$.findings') > 0
     GROUP BY k ORDER BY 2 DESC, k LIMIT ?2";

/// URLs are stored normalised (`scheme://host[:port]/…`): the host is what
/// lies between `://` and the next `/`, less any user info and port.
const URL_DOMAINS: &str = "WITH u AS (
       SELECT m.id, m.verdict, substr(o.value, instr(o.value, '://') + 3) AS rest
       FROM messages m JOIN observables o ON o.message = m.id AND o.kind = 'url'
       WHERE m.first_seen >= ?1 AND m.status <> 'known'),
     h AS (SELECT id, verdict, lower(substr(rest, 1, instr(rest || '/', '/') - 1)) AS hp FROM u),
     n AS (SELECT id, verdict, substr(hp, instr(hp, '@') + 1) AS hp FROM h)
     SELECT CASE WHEN hp LIKE '[%' THEN substr(hp, 1, instr(hp, ']'))
                 WHEN instr(hp, ':') > 0 THEN substr(hp, 1, instr(hp, ':') - 1) ELSE hp END AS k,
       COUNT(DISTINCT id), COUNT(DISTINCT CASE WHEN verdict <> 'pass' THEN id END)
     FROM n WHERE hp <> '' GROUP BY k ORDER BY 2 DESC, k LIMIT ?2";

const FILE_TYPES: &str = "SELECT o.value AS k, COUNT(DISTINCT m.id), COUNT(DISTINCT CASE WHEN m.verdict <> 'pass' THEN m.id END)
     FROM messages m JOIN observables o ON o.message = m.id AND o.kind = 'filetype'
     WHERE m.first_seen >= ?1 AND m.status <> 'known'
     GROUP BY k ORDER BY 2 DESC, k LIMIT ?2";

impl Store {
    /// The top `limit` engines, URL domains and attachment types of mail
    /// first seen on or after `since` (`YYYY-MM-DD`).
    pub async fn top_stats(&self, since: &str, limit: u32) -> Result<TopStats> {
        let since = since.to_string();
        self.call(move |db, _| {
            let run = |sql: &str| -> Result<Vec<Count>> {
                let mut st = db.prepare_cached(sql)?;
                let rows = st.query_map(params![since, limit], |r| {
                    Ok(Count {
                        name: r.get(0)?,
                        total: r.get(1)?,
                        bad: r.get(2)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            };
            Ok(TopStats {
                by_engine: run(ENGINES)?,
                url_domains: run(URL_DOMAINS)?,
                attachment_types: run(FILE_TYPES)?,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{SharedClock, TestClock};
    use crate::domain::{Decision, Finding, MessageKey, Observable, ScannerReport, Verdict};
    use crate::store::{MessageMeta, NewMessage};
    use std::sync::Arc;

    fn report(scanner: &str, tags: &[&str]) -> ScannerReport {
        ScannerReport {
            scanner: scanner.into(),
            critical: false,
            findings: tags
                .iter()
                .map(|t| Finding {
                    tag: (*t).into(),
                    detail: None,
                    indicator: None,
                })
                .collect(),
            elapsed_ms: 1,
            error: None,
        }
    }

    async fn add(s: &Store, uid: u32, verdict: Verdict, reports: Vec<ScannerReport>, obs: &[(&str, &str)]) -> i64 {
        let m = NewMessage {
            key: MessageKey {
                account: "alice".into(),
                mailbox: "INBOX".into(),
                uidvalidity: 1,
                uid,
            },
            meta: MessageMeta {
                message_id: None,
                sha256: format!("sha{uid}"),
                size: 10,
                from: Some("a@b.example".into()),
                subject: Some(format!("subject {uid}")),
                internal_date: None,
            },
        };
        let d = Decision {
            verdict,
            reports,
            observables: obs
                .iter()
                .map(|(k, v)| Observable {
                    kind: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            ..Decision::pass("test")
        };
        s.record_decision(&m, &d, None, false, None).await.unwrap().0
    }

    fn names(c: &[Count]) -> Vec<(&str, i64, i64)> {
        c.iter().map(|c| (c.name.as_str(), c.total, c.bad)).collect()
    }

    #[tokio::test]
    async fn top_tables_count_messages_per_engine_url_host_and_file_type() {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(TestClock::new("2026-11-22T10:00:00Z".parse().unwrap()));
        let s = Store::open(&dir.path().join("t.db"), &[7u8; 32], clock).unwrap();
        let spam = vec![report("rspamd", &["RSPAMD_SPAM", "RSPAMD_X"]), report("clamav", &[])];
        let a = add(
            &s,
            1,
            Verdict::Quarantine,
            spam,
            &[
                ("url", "https://evil.example/a"),
                ("url", "https://evil.example/b"),
                ("url", "http://user@Mixed.Example:8080/x"),
                ("filetype", "html"),
            ],
        )
        .await;
        add(
            &s,
            2,
            Verdict::Pass,
            vec![report("rspamd", &["RSPAMD_HAM"]), report("heuristics", &["LINK_MISMATCH"])],
            &[
                ("url", "https://evil.example/c"),
                ("url", "https://[2001:db8::1]:8443/"),
                ("filetype", "pdf"),
                ("filetype", "html"),
            ],
        )
        .await;
        add(&s, 3, Verdict::Flag, vec![report("clamav", &["AV_VIRUS"])], &[("sha256", "ff")]).await;
        let t = s.top_stats("2026-11-01", 10).await.unwrap();
        assert_eq!(names(&t.by_engine), vec![("rspamd", 2, 1), ("clamav", 1, 1), ("heuristics", 1, 0)]);
        assert_eq!(
            names(&t.url_domains),
            vec![("evil.example", 2, 1), ("[2001:db8::1]", 1, 0), ("mixed.example", 1, 1)]
        );
        assert_eq!(names(&t.attachment_types), vec![("html", 2, 1), ("pdf", 1, 0)]);
        // The period and the limit hold.
        assert!(s.top_stats("2026-11-23", 10).await.unwrap().by_engine.is_empty());
        assert_eq!(s.top_stats("2026-11-01", 1).await.unwrap().url_domains.len(), 1);
        // The audit log's subjects, by id; unknown ids are left out.
        let subj = s.subjects_of(vec![a, a, 999]).await.unwrap();
        assert_eq!(subj, vec![(a, "subject 1".to_string())]);
    }
}
