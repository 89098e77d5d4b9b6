//! A local HTTP server for the manager tests: serves a body per path, can
//! be told to fail, and records the conditional headers it was sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// What the server answers on one path, and what it was asked.
#[derive(Debug, Clone)]
pub(super) struct Served {
    pub status: u16,
    /// Sent in three chunks without a Content-Length.
    pub chunked: bool,
    pub body: Vec<u8>,
    pub etag: String,
    pub last_modified: String,
    pub requests: usize,
    pub if_none_match: Vec<Option<String>>,
    pub if_modified_since: Vec<Option<String>>,
    pub auth_key: Vec<Option<String>>,
}

impl Served {
    pub fn new(body: &[u8], etag: &str) -> Self {
        Self {
            status: 200,
            chunked: false,
            body: body.to_vec(),
            etag: etag.to_string(),
            last_modified: "Fri, 20 Nov 2026 10:05:07 GMT".to_string(),
            requests: 0,
            if_none_match: Vec::new(),
            if_modified_since: Vec::new(),
            auth_key: Vec::new(),
        }
    }
}

#[derive(Clone, Default)]
pub(super) struct Server {
    pub paths: Arc<Mutex<HashMap<String, Served>>>,
    /// When set, every request waits here: all feeds must be in flight at
    /// once for any of them to be answered.
    pub barrier: Option<Arc<tokio::sync::Barrier>>,
}

impl Server {
    pub fn set(&self, path: &str, served: Served) {
        self.paths.lock().unwrap().insert(path.to_string(), served);
    }

    pub fn with<R>(&self, path: &str, f: impl FnOnce(&mut Served) -> R) -> R {
        f(self.paths.lock().unwrap().get_mut(path).unwrap())
    }

    pub fn get(&self, path: &str) -> Served {
        self.with(path, |s| s.clone())
    }
}

async fn answer(State(server): State<Server>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(b) = &server.barrier {
        b.wait().await;
    }
    let h = |name| headers.get(name).map(|v: &header::HeaderValue| v.to_str().unwrap().to_string());
    let mut paths = server.paths.lock().unwrap();
    let Some(s) = paths.get_mut(uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    s.requests += 1;
    s.if_none_match.push(h(header::IF_NONE_MATCH));
    s.if_modified_since.push(h(header::IF_MODIFIED_SINCE));
    s.auth_key.push(h(header::HeaderName::from_static("auth-key")));
    if s.status == 200 && h(header::IF_NONE_MATCH).as_deref() == Some(s.etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, s.etag.clone())]).into_response();
    }
    let status = StatusCode::from_u16(s.status).unwrap();
    let headers = [(header::ETAG, s.etag.clone()), (header::LAST_MODIFIED, s.last_modified.clone())];
    if s.chunked {
        let third = s.body.len().div_ceil(3).max(1);
        let chunks: Vec<Result<Bytes, std::io::Error>> = s.body.chunks(third).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        return (status, headers, Body::from_stream(futures::stream::iter(chunks))).into_response();
    }
    (status, headers, s.body.clone()).into_response()
}

pub(super) async fn start(server: Server) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(answer).with_state(server);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}
