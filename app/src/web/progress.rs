//! Backfill progress live (issue 22, item 4): a small event stream of its
//! own, so the dashboard's card moves while a backfill runs. It sends the
//! whole list at once on connect and then whenever it changes.

use super::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;

/// How often the stream looks for a change: often enough that a chunk of
/// a fast backfill shows, cheap enough (one small query) to run per viewer.
const POLL: Duration = Duration::from_millis(500);

pub(crate) async fn events(State(st): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rt = st.rt.clone();
    let stream = futures::stream::unfold((rt, None::<String>), |(rt, last)| async move {
        loop {
            if last.is_some() {
                tokio::time::sleep(POLL).await;
            }
            let data = match rt.backfill_progress().await {
                Ok(p) => serde_json::to_string(&p).unwrap_or_else(|_| "[]".into()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read backfill progress");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if last.as_deref() != Some(data.as_str()) {
                let ev = Event::default().event("backfill").data(data.clone());
                return Some((Ok(ev), (rt, Some(data))));
            }
        }
    });
    let shutdown = st.shutdown.clone();
    let stream = stream.take_until(async move { shutdown.cancelled_owned().await });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"))
}
