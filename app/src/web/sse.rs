//! Live updates: every scan and every change to a stored message is pushed
//! as the message's current list row. Heartbeats keep proxies from closing
//! the stream; shutdown ends it so it never holds up a graceful stop.

use super::AppState;
use crate::domain::Event as DomainEvent;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

pub(crate) async fn events(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = st.rt.events.subscribe();
    let store = st.rt.store.clone();
    let stream = futures::stream::unfold((rx, store), |(mut rx, store)| async move {
        loop {
            let (kind, id) = match rx.recv().await {
                Ok(DomainEvent::Scanned { id }) => ("scanned", id),
                Ok(DomainEvent::Updated { id } | DomainEvent::Clawback { id }) => ("updated", id),
                // The page missed events: tell it to reload its list.
                Err(RecvError::Lagged(n)) => {
                    let ev = Event::default().event("lagged").data(n.to_string());
                    return Some((Ok(ev), (rx, store)));
                }
                Err(RecvError::Closed) => return None,
            };
            let Ok(Some(row)) = store.message_summary(id).await else { continue };
            let data = serde_json::json!({ "kind": kind, "row": row });
            let ev = Event::default().event("message").data(data.to_string());
            return Some((Ok(ev), (rx, store)));
        }
    });
    let shutdown = st.shutdown.clone();
    let stream = stream.take_until(async move { shutdown.cancelled_owned().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"))
}
