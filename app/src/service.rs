//! systemd integration (`Type=notify`): readiness once the dashboard is
//! bound and every account is started, a status line, `STOPPING=1` on the
//! way out, and watchdog pings while the runtime is alive. Outside systemd
//! (no `NOTIFY_SOCKET`) every call is a no-op.

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Startup is finished.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Shutdown has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

/// Pings the watchdog at half its interval until `cancel`. The pings come
/// from the async runtime, so a wedged runtime stops them and systemd
/// restarts the service.
pub fn spawn_watchdog(cancel: CancellationToken) {
    let Some(every) = sd_notify::watchdog_enabled() else { return };
    let every = every / 2;
    tracing::info!(interval_ms = every.as_millis() as u64, "systemd watchdog enabled");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => send(&[NotifyState::Watchdog]),
            }
        }
    });
}
