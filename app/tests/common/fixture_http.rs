//! A stand-in for a third-party HTTP service (a feed, RDAP, AbuseIPDB) on
//! 127.0.0.1: serves whatever body the test sets per path, counts requests.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    bodies: HashMap<String, (u16, Vec<u8>)>,
    hits: HashMap<String, usize>,
}

#[derive(Clone)]
pub struct FixtureHttp {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

async fn serve(State(st): State<Arc<Mutex<Inner>>>, Path(path): Path<String>) -> impl IntoResponse {
    let mut g = st.lock().unwrap();
    *g.hits.entry(path.clone()).or_default() += 1;
    match g.bodies.get(&path) {
        Some((code, body)) => (StatusCode::from_u16(*code).unwrap(), body.clone()),
        None => (StatusCode::NOT_FOUND, b"not found".to_vec()),
    }
}

impl FixtureHttp {
    pub async fn start() -> FixtureHttp {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            // POST too: Rspamd's /checkv2 (the request body is not read).
            .route("/{*path}", axum::routing::get(serve).post(serve))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FixtureHttp { base, inner }
    }

    /// Serves `body` with `code` at `/path`.
    pub fn set(&self, path: &str, code: u16, body: impl Into<Vec<u8>>) {
        self.inner
            .lock()
            .unwrap()
            .bodies
            .insert(path.trim_start_matches('/').to_string(), (code, body.into()));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn hits(&self, path: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .hits
            .get(path.trim_start_matches('/'))
            .copied()
            .unwrap_or(0)
    }
}
