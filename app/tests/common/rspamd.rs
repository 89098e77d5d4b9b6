//! The stack's Rspamd as the tests ask it: the controller's learned count
//! and the normal worker's symbols for a message.

use super::stack::shared;
use serde_json::Value;

async fn json(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// Rspamd's count of learned messages (controller `/stat`).
pub async fn learned() -> u64 {
    let (url, pass) = shared().rspamd_controller.clone().expect("rspamd controller");
    let v = json(reqwest::Client::new().get(format!("{url}/stat")).header("Password", pass)).await;
    v["learned"].as_u64().expect("learned in /stat")
}

/// The symbols Rspamd's normal worker (`/checkv2`) gives `raw`.
pub async fn symbols(raw: &[u8]) -> serde_json::Map<String, Value> {
    let url = shared().rspamd_url.clone().expect("rspamd in the stack");
    let v = json(
        reqwest::Client::new()
            .post(format!("{}/checkv2", url.trim_end_matches('/')))
            .body(raw.to_vec()),
    )
    .await;
    v["symbols"].as_object().cloned().unwrap_or_default()
}
