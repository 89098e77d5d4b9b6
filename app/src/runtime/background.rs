//! The background duties at run time: the notifier, the digest mailer and link key,
//! and the background tasks that drive them: the schedule (maintenance and
//! digests on the injected clock), the verdict notifier fed by the event
//! bus, and the scanner health watch behind rate-limited alerts.

use super::maintenance::{JOB, MaintenanceReport, stamp};
use super::{Runtime, RuntimeError};
use crate::clock::SharedClock;
use crate::config::{BackgroundSettings, DigestFrequency, Settings};
use crate::digest_mail::{Mailer, links::LinkKey};
use crate::domain::Event;
use crate::intel::net::{NetPolicy, SafeClient};
use crate::notify::{Notice, NoticeKind, Notifier};
use arc_swap::ArcSwap;
use chrono::{DateTime, NaiveTime, Utc, Weekday};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the schedule is looked at.
const TICK: Duration = Duration::from_secs(30);
/// How often scanner health is checked for alerts.
const HEALTH_EVERY: Duration = Duration::from_secs(60);

/// The channels in force and the settings they were built from; swapped
/// whole when the dashboard changes a key or a rule (issue 22).
pub struct BackgroundLive {
    /// Configured notification channels, if any.
    pub notifier: Option<Arc<Notifier>>,
    /// Digest SMTP client, when an SMTP URL is set.
    pub mailer: Option<Mailer>,
    /// Notification rules, digest schedule and retention in force.
    pub settings: BackgroundSettings,
}

/// Notifier, digest mailer and what the last runs reported.
pub struct BackgroundState {
    live: ArcSwap<BackgroundLive>,
    client: SafeClient,
    clock: SharedClock,
    /// Signs digest links.
    pub link_key: LinkKey,
    /// The last maintenance run.
    pub last_maintenance: Mutex<Option<MaintenanceReport>>,
    /// Digests sent since start.
    pub digests_sent: AtomicU64,
}

/// SMTP user and password given apart from the URL.
pub type SmtpCredentials = Option<(String, String)>;

impl BackgroundState {
    /// Builds the channels `ops` enables.
    pub fn build(
        s: &Settings,
        bg: BackgroundSettings,
        smtp: SmtpCredentials,
        clock: &SharedClock,
    ) -> Result<BackgroundState, RuntimeError> {
        let policy = NetPolicy {
            allow_loopback_for_tests: s.intel.allow_loopback_for_tests,
        };
        let client = SafeClient::new(policy, Duration::from_secs(15)).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let live = live_for(bg, smtp, &client, clock)?;
        Ok(BackgroundState {
            live: ArcSwap::from_pointee(live),
            client,
            clock: clock.clone(),
            link_key: LinkKey::derive(&s.db_key),
            last_maintenance: Mutex::new(None),
            digests_sent: AtomicU64::new(0),
        })
    }

    /// Validates and swaps in channels for `ops`.
    pub(super) fn set(&self, bg: BackgroundSettings, smtp: SmtpCredentials) -> Result<(), RuntimeError> {
        let live = live_for(bg, smtp, &self.client, &self.clock)?;
        self.live.store(Arc::new(live));
        Ok(())
    }

    /// Channels and rules in force now.
    pub fn current(&self) -> Arc<BackgroundLive> {
        self.live.load_full()
    }

    /// The notifier in force, if a channel is configured.
    pub fn notifier(&self) -> Option<Arc<Notifier>> {
        self.live.load().notifier.clone()
    }

    /// The digest mailer in force, if SMTP is configured.
    pub fn mailer(&self) -> Option<Mailer> {
        self.live.load().mailer.clone()
    }
}

fn live_for(
    bg: BackgroundSettings,
    smtp: SmtpCredentials,
    client: &SafeClient,
    clock: &SharedClock,
) -> Result<BackgroundLive, RuntimeError> {
    let notifier = Notifier::new(&bg.notify, client.clone(), clock.clone()).map(Arc::new);
    let mailer = match &bg.digest.smtp_url {
        Some(u) => Some(Mailer::from_url_with(u, smtp).map_err(|e| RuntimeError::Invalid(format!("SMTP URL: {e}")))?),
        None => None,
    };
    Ok(BackgroundLive {
        notifier,
        mailer,
        settings: bg,
    })
}

impl Runtime {
    /// Whether `job` is due at `now`; a job never seen before starts its
    /// schedule now rather than running at once. Returns the previous run.
    async fn due(&self, job: &str, at: NaiveTime, weekday: Option<Weekday>) -> Result<Option<String>, RuntimeError> {
        let now = self.clock.now();
        let last = self.store.last_run(job).await?;
        let prev = last.as_deref().and_then(|l| DateTime::parse_from_rfc3339(l).ok());
        let (Some(last), Some(prev)) = (last, prev) else {
            self.store.set_last_run(job, &stamp(now), None).await?;
            return Ok(None);
        };
        let next = crate::housekeeping::next_after(&chrono::Local, prev.with_timezone(&Utc), at, weekday);
        Ok((now >= next).then_some(last))
    }

    /// Runs whatever is due: maintenance, then each account's digest.
    pub async fn ops_tick(&self) -> Result<(), RuntimeError> {
        let bg = self.background.current();
        if self.due(JOB, bg.settings.maintenance.at, None).await?.is_some() {
            self.run_maintenance().await?;
        }
        if bg.mailer.is_none() {
            return Ok(());
        }
        if bg.settings.digest.admin_to.is_some()
            && let Some(since) = self.due(super::admin_digest::ADMIN_JOB, bg.settings.digest.at, None).await?
        {
            let job = super::admin_digest::ADMIN_JOB;
            self.store.set_last_run(job, &stamp(self.clock.now()), None).await?;
            if let Err(e) = self.send_admin_digest(&since).await
                && let Some(n) = self.background.notifier()
            {
                let notice = Notice::plain(NoticeKind::Maintenance, "Admin digest not sent".into(), e.to_string());
                n.alert(job, notice).await;
            }
        }
        for a in self.store.accounts().await? {
            let weekday = match a.digest {
                DigestFrequency::Never => continue,
                DigestFrequency::Daily => None,
                DigestFrequency::Weekly => Some(Weekday::Mon),
            };
            let job = format!("digest:{}", a.name);
            if let Some(since) = self.due(&job, bg.settings.digest.at, weekday).await? {
                // The run is recorded before sending: a failed send is
                // audited and alerted, not retried every tick.
                self.store.set_last_run(&job, &stamp(self.clock.now()), None).await?;
                if let Err(e) = self.send_digest(&a, &since).await
                    && let Some(n) = self.background.notifier()
                {
                    let notice = Notice::plain(NoticeKind::Maintenance, format!("Digest for {} not sent", a.name), e.to_string());
                    n.alert(&job, notice).await;
                }
            }
        }
        Ok(())
    }

    /// Starts the schedule, the verdict notifier and the health watch.
    pub fn spawn_ops(&self, cancel: CancellationToken) {
        self.spawn_schedule(cancel.clone());
        self.spawn_notifier(cancel);
    }

    /// Runs [`Runtime::ops_tick`] every 30 s until cancelled.
    pub fn spawn_schedule(&self, cancel: CancellationToken) {
        let (rt, c) = (self.clone(), cancel);
        tokio::spawn(async move {
            loop {
                if let Err(e) = rt.ops_tick().await {
                    tracing::warn!(error = %e, "scheduled job failed");
                }
                tokio::select! {
                    _ = c.cancelled() => break,
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        });
    }

    /// Sends verdict and claw-back notices from the event bus, and watches
    /// scanner health for alerts, when a channel is configured.
    /// The channel in force is looked up per event, so one configured later
    /// in the dashboard is used at once.
    pub fn spawn_notifier(&self, cancel: CancellationToken) {
        let (rt, c, mut rx) = (self.clone(), cancel.clone(), self.events.subscribe());
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = c.cancelled() => break,
                    ev = rx.recv() => ev,
                };
                match ev {
                    Ok(ev) => {
                        if let Some(n) = rt.background.notifier() {
                            rt.notify_event(&n, ev).await;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                        tracing::warn!(missed = k, "notifier fell behind the event bus");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let rt = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(HEALTH_EVERY) => {}
                }
                if let Some(n) = rt.background.notifier() {
                    rt.check_scanners(&n).await;
                    rt.check_listeners(&n).await;
                }
            }
        });
    }

    /// Turns one bus event into a notice, if it deserves one.
    pub async fn notify_event(&self, n: &Notifier, ev: Event) {
        let (id, kind) = match ev {
            Event::Scanned { id } => (id, NoticeKind::Verdict),
            Event::Clawback { id } => (id, NoticeKind::Clawback),
            Event::Updated { .. } => return,
        };
        let m = match self.store.message_summary(id).await {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "notifier cannot read the message");
                return;
            }
        };
        match kind {
            NoticeKind::Clawback => {
                let title = format!("Postern pulled a delivered message back into quarantine ({})", m.account);
                let mut notice = Notice::about_message(kind, &m, title);
                notice
                    .message
                    .push_str("\nFurther claw-backs within the alert interval are in the audit log (retro_quarantine).");
                n.alert("clawback", notice).await;
            }
            _ if m.observe_only || m.verdict.is_none() => {}
            _ => {
                let title = format!("Postern: {} {}", m.verdict.as_deref().unwrap_or("?"), m.account);
                n.verdict(Notice::about_message(kind, &m, title)).await;
            }
        }
    }

    /// Alerts for every folder that is stuck or whose server is broken
    /// (rate-limited per folder; issue 18, item 10).
    pub async fn check_listeners(&self, n: &Notifier) {
        for l in self.manager.status() {
            let Some(notice) = listener_notice(&l) else { continue };
            n.alert(&format!("imap:{}/{}", l.account, l.mailbox), notice).await;
        }
    }

    /// Alerts for every scanner whose health check fails (rate-limited per scanner).
    pub async fn check_scanners(&self, n: &Notifier) {
        for (id, critical, r) in self.live.current().probe().await {
            let Err(why) = r else { continue };
            let title = format!("Postern: scanner {id} is unhealthy");
            let body = if critical {
                format!("{why}\nIt is critical: mail is quarantined (fail-closed) until it recovers.")
            } else {
                format!("{why}\nIt fails open: mail is scanned without it until it recovers.")
            };
            n.alert(&format!("scanner:{id}"), Notice::plain(NoticeKind::ScannerUnhealthy, title, body))
                .await;
        }
    }
}

/// The alert for a listener that needs the operator, if it does.
pub fn listener_notice(l: &crate::manager::ListenerStatus) -> Option<Notice> {
    if !l.needs_attention() {
        return None;
    }
    let why = match &l.state {
        crate::manager::ListenerState::Broken { reason } => reason.clone(),
        _ => format!(
            "failing since {} without a healthy pass; last error: {}",
            l.failing_since.as_deref().unwrap_or("?"),
            l.last_error.as_deref().unwrap_or("?")
        ),
    };
    let title = format!("Postern: folder {} of {} needs attention", l.mailbox, l.account);
    let mut notice = Notice::plain(
        NoticeKind::AccountError,
        title,
        format!("{why}\nNew mail in it is not being scanned."),
    );
    notice.account = Some(l.account.clone());
    Some(notice)
}
