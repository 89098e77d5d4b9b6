//! The generic webhook: one JSON object per notice, signed with
//! HMAC-SHA256 so the receiver can tell it came from this Postern.

use super::{Notice, NotifyError};
use crate::intel::net::SafeClient;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(super) async fn send(client: &SafeClient, url: &str, secret: Option<&str>, n: &Notice, now: DateTime<Utc>) -> Result<(), NotifyError> {
    let mut value = serde_json::to_value(n).map_err(|e| NotifyError::Url {
        channel: "webhook",
        detail: e.to_string(),
    })?;
    if let Some(o) = value.as_object_mut() {
        o.insert("ts".into(), now.to_rfc3339().into());
        o.insert("source".into(), "postern".into());
    }
    let body = serde_json::to_vec(&value).unwrap_or_default();
    let mut req = client
        .request(reqwest::Method::POST, url)?
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            "X-Postern-Event",
            serde_json::to_value(n.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        );
    if let Some(s) = secret {
        req = req.header("X-Postern-Signature", signature(s, &body));
    }
    let resp = client.send(req.body(body)).await?;
    if !resp.status().is_success() {
        return Err(NotifyError::Status {
            channel: "webhook",
            status: resp.status().as_u16(),
        });
    }
    Ok(())
}
