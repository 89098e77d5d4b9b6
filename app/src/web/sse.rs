//! Live updates: every scan and every change to a stored message is pushed
//! as the message's current list row. Heartbeats keep proxies from closing
//! the stream; shutdown ends it so it never holds up a graceful stop.
//!
//! The cards and the menu's quarantine count follow as a `counts` event:
//! one when the stream opens, then after changes, at most one a second (a
//! backfill scans thousands of messages; each count is a GROUP BY).

use super::AppState;
use crate::domain::Event as DomainEvent;
use crate::runtime::Runtime;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// Least time between two `counts` events.
const COUNTS_EVERY: Duration = Duration::from_secs(1);

struct Feed {
    rx: Receiver<DomainEvent>,
    rt: Runtime,
    /// When counts were last sent; `None` before the first.
    sent: Option<Instant>,
    /// A change arrived since counts were last sent.
    pending: bool,
}

impl Feed {
    async fn counts(&mut self) -> Option<Event> {
        self.sent = Some(Instant::now());
        self.pending = false;
        match self.rt.live_counts().await {
            Ok(c) => Some(Event::default().event("counts").data(serde_json::to_string(&c).unwrap_or_default())),
            Err(e) => {
                tracing::warn!(error = %e, "live counts unavailable");
                None
            }
        }
    }

    /// The next events to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Vec<Event>> {
        if self.sent.is_none() {
            return Some(self.counts().await.into_iter().collect());
        }
        loop {
            let due = self.sent.map(|t| t + COUNTS_EVERY);
            let got = match (self.pending, due) {
                (true, Some(due)) => tokio::select! {
                    ev = self.rx.recv() => Some(ev),
                    () = tokio::time::sleep_until(due) => None,
                },
                _ => Some(self.rx.recv().await),
            };
            let (kind, id) = match got {
                None => return Some(self.counts().await.into_iter().collect()),
                Some(Ok(DomainEvent::Scanned { id })) => ("scanned", id),
                Some(Ok(DomainEvent::Updated { id } | DomainEvent::Clawback { id })) => ("updated", id),
                // The page missed events: tell it to reload its list.
                Some(Err(RecvError::Lagged(n))) => {
                    self.pending = true;
                    return Some(vec![Event::default().event("lagged").data(n.to_string())]);
                }
                Some(Err(RecvError::Closed)) => return None,
            };
            self.pending = true;
            let Ok(Some(row)) = self.rt.message_row(id).await else { continue };
            let data = serde_json::json!({ "kind": kind, "row": row });
            let mut out = vec![Event::default().event("message").data(data.to_string())];
            if self.sent.is_none_or(|t| t.elapsed() >= COUNTS_EVERY) {
                out.extend(self.counts().await);
            }
            return Some(out);
        }
    }
}

pub(crate) async fn events(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let feed = Feed {
        rx: st.rt.subscribe_events(),
        rt: st.rt.clone(),
        sent: None,
        pending: false,
    };
    let stream = futures::stream::unfold(feed, |mut f| async move { f.next().await.map(|evs| (evs, f)) })
        .flat_map(|evs| futures::stream::iter(evs.into_iter().map(Ok)));
    let shutdown = st.shutdown.clone();
    let stream = stream.take_until(async move { shutdown.cancelled_owned().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"))
}
