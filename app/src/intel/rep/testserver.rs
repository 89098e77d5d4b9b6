//! A local HTTP server for the reputation tests: it answers from the JSON
//! fixtures under `tests/fixtures/intel/` and records every request, so
//! tests can count what reached the "service".

use super::lock;
use crate::intel::net::{NetPolicy, SafeClient};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

/// What the fixture server answers.
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            headers: vec![("content-type", "application/json".into())],
        }
    }
}

type Handler = dyn Fn(&Uri, &HeaderMap) -> Reply + Send + Sync;

/// A running fixture server on 127.0.0.1.
pub(crate) struct FixtureServer {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FixtureServer {
    pub async fn start(handler: impl Fn(&Uri, &HeaderMap) -> Reply + Send + Sync + 'static) -> FixtureServer {
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let (handler, log) = (handler.clone(), log.clone());
            async move {
                // Logged before answering, so a count read after the client
                // has its response is exact.
                lock(&log).push(uri.to_string());
                let reply = handler(&uri, &headers);
                let mut resp: Response = (
                    StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    reply.body,
                )
                    .into_response();
                for (k, v) in reply.headers {
                    resp.headers_mut().insert(k, v.parse().unwrap());
                }
                resp
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FixtureServer { base, seen, task }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        lock(&self.seen).len()
    }

    /// Requests whose path and query contain `needle`.
    pub fn requests_to(&self, needle: &str) -> usize {
        lock(&self.seen).iter().filter(|u| u.contains(needle)).count()
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fixture file under `tests/fixtures/intel/`, if it exists.
pub(crate) fn fixture(rel: &str) -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/intel")
        .join(rel);
    std::fs::read_to_string(path).ok()
}

/// The production client with the loopback test switch on (the only
/// exception the SSRF guard makes).
pub(crate) fn client() -> SafeClient {
    SafeClient::new(
        NetPolicy {
            allow_loopback_for_tests: true,
        },
        std::time::Duration::from_secs(30),
    )
    .unwrap()
}

/// The production client as deployed: loopback refused.
pub(crate) fn guarded_client() -> SafeClient {
    SafeClient::new(NetPolicy::default(), std::time::Duration::from_secs(30)).unwrap()
}
