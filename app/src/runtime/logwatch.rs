//! Log watch at run time: every configured log is read from its stored
//! offset, its lines go through the engine, and each batch (events,
//! enriched attacks, attacker indicators, new offset) is stored in one
//! transaction. New or strengthened attacker indicators rebuild the threat
//! index and claw back recent mail from those addresses.

use super::{Runtime, RuntimeError};
use crate::clock::SharedClock;
use crate::config::LogwatchSettings;
use crate::logwatch::detect::Alert;
use crate::logwatch::enrich::{Geo, Rdns};
use crate::logwatch::journal::{self, JournalSpec};
use crate::logwatch::tail::{self, Cursor};
use crate::logwatch::{Engine, Stats, describe, indicators};
use crate::notify::{Notice, NoticeKind};
use crate::store::{AttackRecord, Position, Store};
use std::collections::HashMap;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// Bytes read from one log per batch (one transaction each).
const BATCH_BYTES: usize = 4 << 20;
/// Journal entries per batch.
const BATCH_ENTRIES: usize = 20_000;
/// The journal's name in the store.
const JOURNAL: &str = "journal";

/// What one round over the logs did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Lines read.
    pub lines: usize,
    /// Events stored.
    pub events: usize,
    /// Attack rows stored.
    pub attacks: usize,
    /// Indicators added or changed.
    pub indicators: usize,
    /// Compromise suspicions, as (rate-limit key, one line for the operator).
    pub compromises: Vec<(String, String)>,
}

/// The log watcher: engine, enrichment and the offsets it has stored.
pub struct LogWatcher {
    files: Vec<PathBuf>,
    engine: Engine,
    geo: Geo,
    rdns: Option<Rdns>,
    store: Store,
    clock: SharedClock,
    cursors: HashMap<PathBuf, Option<Cursor>>,
    journal: Option<(JournalSpec, Option<String>)>,
}

impl LogWatcher {
    /// Opens the MaxMind databases (an unreadable one is an error) and
    /// loads the stored offsets; the windows are warmed with the events
    /// of the last window, so a restart does not forget a running attack.
    pub async fn new(s: &LogwatchSettings, store: Store, clock: SharedClock) -> Result<LogWatcher, RuntimeError> {
        let geo = Geo::open(&s.geoip).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let mut engine = Engine::new(s.rules.clone());
        let since = clock.now().timestamp() - s.rules.window_secs();
        engine.warm(&store.logwatch_events_since(since).await?);
        let mut cursors = HashMap::new();
        for f in &s.files {
            cursors.insert(f.clone(), store.logwatch_cursor(&f.display().to_string()).await?);
        }
        let journal = if s.journal.is_empty() {
            None
        } else {
            let spec = JournalSpec {
                program: s.journalctl.clone(),
                units: s.journal.clone(),
            };
            Some((spec, store.logwatch_journal_cursor(JOURNAL).await?))
        };
        Ok(LogWatcher {
            journal,
            files: s.files.clone(),
            engine,
            geo,
            rdns: s.rdns.then(|| Rdns::system(s.rdns_timeout)),
            store,
            clock,
            cursors,
        })
    }

    /// Counts so far.
    pub fn stats(&self) -> &Stats {
        &self.engine.stats
    }

    async fn records(&self, alerts: &[Alert]) -> Vec<AttackRecord> {
        let rules = self.engine.rules();
        let mut out = Vec::new();
        for a in alerts {
            let detail = describe(a);
            for ind in indicators(a, rules) {
                let ip: Option<std::net::IpAddr> = (ind.kind == "ip").then(|| ind.value.parse().ok()).flatten();
                let geo = ip
                    .or(a.network.map(|n| n.network()))
                    .map(|ip| self.geo.lookup(ip))
                    .unwrap_or_default();
                let rdns = match (&self.rdns, ip) {
                    (Some(r), Some(ip)) => r.name(ip).await,
                    _ => None,
                };
                out.push(AttackRecord {
                    at: a.at,
                    kind: a.kind.as_str().into(),
                    ip: ip.map(|i| i.to_string()),
                    network: (ind.kind == "cidr").then(|| ind.value.clone()),
                    user: a.user.clone(),
                    count: a.count,
                    country: geo.country,
                    asn: geo.asn,
                    as_org: geo.as_org,
                    rdns,
                    detail: detail.clone(),
                    indicator: Some(ind),
                });
            }
        }
        out
    }

    /// Reads every log until it has nothing more; stores each batch.
    pub async fn round(&mut self) -> Result<Round, RuntimeError> {
        let mut r = Round::default();
        for path in self.files.clone() {
            let name = path.display().to_string();
            loop {
                let cursor = self.cursors.get(&path).cloned().flatten();
                let p = path.clone();
                let batch = tokio::task::spawn_blocking(move || tail::read(&p, cursor.as_ref(), BATCH_BYTES))
                    .await
                    .map_err(|e| RuntimeError::Invalid(format!("log reader failed: {e}")))?
                    .map_err(|e| RuntimeError::Invalid(format!("log {name}: {e}")))?;
                if let Some(note) = &batch.note {
                    tracing::info!(log = %name, "{note}");
                }
                let position = batch.cursor.clone().map(Position::File);
                self.store_batch(&name, &batch.lines, position, &mut r).await?;
                if batch.cursor.is_some() {
                    self.cursors.insert(path.clone(), batch.cursor);
                }
                if !batch.more {
                    break;
                }
            }
        }
        self.journal_round(&mut r).await?;
        Ok(r)
    }

    async fn journal_round(&mut self, r: &mut Round) -> Result<(), RuntimeError> {
        let Some((spec, cursor)) = self.journal.clone() else {
            return Ok(());
        };
        let mut cursor = cursor;
        loop {
            let (sp, c) = (spec.clone(), cursor.clone());
            let batch = tokio::task::spawn_blocking(move || journal::read(&sp, c.as_deref(), BATCH_ENTRIES))
                .await
                .map_err(|e| RuntimeError::Invalid(format!("journal reader failed: {e}")))?
                .map_err(|e| RuntimeError::Invalid(format!("running {}: {e}", spec.program.display())))?;
            let position = batch.cursor.clone().filter(|c| Some(c) != cursor.as_ref()).map(Position::Journal);
            self.store_batch(JOURNAL, &batch.lines, position, r).await?;
            cursor = batch.cursor;
            if let Some(j) = &mut self.journal {
                j.1 = cursor.clone();
            }
            if !batch.more {
                return Ok(());
            }
        }
    }

    /// Parses, detects, enriches and stores one batch with its position.
    async fn store_batch(&mut self, name: &str, lines: &[String], position: Option<Position>, r: &mut Round) -> Result<(), RuntimeError> {
        let got = self.engine.ingest(lines, self.clock.now());
        for a in got
            .alerts
            .iter()
            .filter(|a| a.kind == crate::logwatch::detect::AlertKind::CompromiseSuspicion)
        {
            tracing::warn!(log = %name, "{}", describe(a));
            let ips: Vec<String> = a.ips.iter().map(|i| i.to_string()).collect();
            let key = format!("logwatch:{}:{}", ips.join(","), a.user.as_deref().unwrap_or(""));
            r.compromises.push((key, describe(a)));
        }
        let attacks = self.records(&got.alerts).await;
        r.lines += lines.len();
        r.events += got.events.len();
        r.attacks += attacks.len();
        r.indicators += self.store.logwatch_commit(name, position, got.events, attacks).await?;
        Ok(())
    }
}

/// How often the blocklist file is checked for expired entries.
const BLOCKLIST_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Runtime {
    /// What follows a stored round: compromise suspicions go to ntfy and
    /// the webhook as alerts (rate-limited per address and user), and new
    /// or strengthened attacker indicators rebuild the threat index.
    pub async fn after_logwatch_round(&self, r: &Round) {
        if let Some(n) = self.background.notifier() {
            for (key, line) in &r.compromises {
                let notice = Notice::plain(NoticeKind::CompromiseSuspicion, "Possible account compromise".into(), line.clone());
                n.alert(key, notice).await;
            }
        }
        if r.indicators > 0 {
            tracing::info!(attacks = r.attacks, indicators = r.indicators, "log watch: new attackers");
            if let Err(e) = self.sync_indicators().await {
                tracing::warn!(error = %e, "log watch: index rebuild failed");
            }
        }
    }

    /// Starts log watch when logs are configured; a MaxMind database that
    /// cannot be opened stops the start.
    pub async fn spawn_logwatch(&self, cancel: CancellationToken) -> Result<(), RuntimeError> {
        let s = &self.settings.logwatch;
        if s.files.is_empty() && s.journal.is_empty() {
            return Ok(());
        }
        let mut w = LogWatcher::new(s, self.store.clone(), self.clock.clone()).await?;
        tracing::info!(files = ?s.files, journal = ?s.journal, geoip = s.geoip.len(), rdns = s.rdns, "log watch started");
        let (rt, poll) = (self.clone(), s.poll);
        tokio::spawn(async move {
            // The blocklist is also rewritten on a timer, so expired
            // attackers leave it even when no new ones come.
            let mut last_blocklist: Option<tokio::time::Instant> = None;
            loop {
                let round = w.round().await;
                if let Ok(r) = &round {
                    rt.after_logwatch_round(r).await;
                }
                let changed = matches!(&round, Ok(r) if r.indicators > 0);
                if let Err(e) = &round {
                    tracing::warn!(error = %e, "log watch round failed");
                }
                if changed || last_blocklist.is_none_or(|t| t.elapsed() >= BLOCKLIST_EVERY) {
                    last_blocklist = Some(tokio::time::Instant::now());
                    if let Err(e) = rt.refresh_blocklist().await {
                        tracing::warn!(error = %e, "log watch: blocklist not written");
                    }
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use crate::logwatch::journal::tests::{POSTFIX, fake};
    use std::io::Write;
    use std::sync::Arc;

    /// A file and the journal together; a second watcher on the same store
    /// (a restart) resumes both where the first stopped.
    #[tokio::test]
    async fn files_and_the_journal_resume_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let clock: SharedClock = Arc::new(TestClock::new(chrono::DateTime::from_timestamp(1_796_184_100, 0).unwrap()));
        let store = Store::open(&dir.path().join("db"), &[3; 32], clock.clone()).unwrap();
        let log = dir.path().join("mail.log");
        let line = |user: &str| {
            format!(
                "2026-12-02T04:00:22+00:00 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{user}>, rip=203.0.113.9, lip=192.0.2.1\n"
            )
        };
        let append = |s: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap()
                .write_all(s.as_bytes())
                .unwrap()
        };
        append(&line("before"));
        let first = r#"{"__CURSOR":"c0","MESSAGE":"startup"}"#;
        let mut s = LogwatchSettings {
            files: vec![log.clone()],
            journal: vec!["postfix@-.service".into()],
            ..Default::default()
        };
        s.journalctl = fake(dir.path(), &[first]).program;
        let mut w = LogWatcher::new(&s, store.clone(), clock.clone()).await.unwrap();
        assert_eq!(w.round().await.unwrap().events, 0, "both start at their end");
        append(&line("one"));
        fake(dir.path(), &[first, POSTFIX]);
        assert_eq!(w.round().await.unwrap().events, 2);
        drop(w);
        append(&line("two"));
        let mut w = LogWatcher::new(&s, store.clone(), clock.clone()).await.unwrap();
        assert_eq!(
            w.round().await.unwrap().events,
            1,
            "only the new file line; the journal entry is not read again"
        );
        let users: Vec<Option<String>> = store.logwatch_events_since(0).await.unwrap().into_iter().map(|e| e.user).collect();
        assert_eq!(
            users,
            vec![Some("one".into()), Some("alice@example.org".into()), Some("two".into())]
        );
        // Three more failures, then a success from the same address: the
        // round reports a compromise suspicion for the notifier.
        for u in ["three", "four", "five"] {
            append(&line(u));
        }
        append(
            "2026-12-02T04:01:00+00:00 mx dovecot: imap-login: Login: user=<five>, method=PLAIN, rip=203.0.113.9, lip=192.0.2.1, mpid=1, TLS\n",
        );
        let r = w.round().await.unwrap();
        assert_eq!(r.compromises.len(), 1, "{r:?}");
        assert!(
            r.compromises[0].0.contains("203.0.113.9") && r.compromises[0].1.contains("compromise suspicion"),
            "{r:?}"
        );
    }
}
