//! A local HTTP receiver for notifications (ntfy, webhooks) on 127.0.0.1:
//! records every POST with its headers and body.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn take(
    State(st): State<Arc<Mutex<Vec<Received>>>>,
    path: Option<Path<String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> &'static str {
    st.lock().unwrap().push(Received {
        path: path.map(|p| p.0).unwrap_or_default(),
        headers,
        body: body.to_vec(),
    });
    "ok"
}

impl Receiver {
    pub async fn start() -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/", axum::routing::post(take))
            .route("/{*path}", axum::routing::post(take))
            .with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { base, got }
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}
