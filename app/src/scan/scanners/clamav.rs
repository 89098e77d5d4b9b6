//! ClamAV over clamd's `INSTREAM` (TCP): the raw message in length-prefixed
//! chunks, never more than clamd's StreamMaxLength, under a deadline.

use crate::domain::Finding;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// clamd found malware.
pub const TAG_VIRUS: &str = "AV_VIRUS";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_VIRUS];
const CHUNK: usize = 64 * 1024;
/// Attachments streamed one by one after the whole message.
const MAX_ATTACHMENTS: usize = 32;

/// clamd client.
#[derive(Debug, Clone)]
pub struct ClamavScanner {
    addr: String,
    timeout: Duration,
    mode: FailureMode,
    stream_max: usize,
}

impl ClamavScanner {
    /// `addr` is `host:port`; `stream_max` must not exceed clamd's StreamMaxLength.
    pub fn new(addr: &str, timeout: Duration, mode: FailureMode, stream_max: usize) -> Self {
        Self {
            addr: addr.to_string(),
            timeout,
            mode,
            stream_max,
        }
    }

    async fn ping(&self) -> Result<String, ScanError> {
        let err = |e: std::io::Error| ScanError::scanner("clamav", e);
        let mut s = TcpStream::connect(&self.addr).await.map_err(err)?;
        s.write_all(b"zPING\0").await.map_err(err)?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.map_err(err)?;
        let reply = String::from_utf8_lossy(&buf[..n]).trim_end_matches('\0').trim().to_string();
        if reply != "PONG" {
            return Err(ScanError::scanner("clamav", format!("PING answered {reply:?}")));
        }
        Ok(format!("clamd at {} answers PING", self.addr))
    }

    async fn instream(&self, data: &[u8]) -> Result<String, ScanError> {
        let err = |e: std::io::Error| ScanError::scanner("clamav", e);
        let mut s = TcpStream::connect(&self.addr).await.map_err(err)?;
        s.write_all(b"zINSTREAM\0").await.map_err(err)?;
        // clamd answers "INSTREAM size limit exceeded" past StreamMaxLength,
        // so send at most that much; the rest is covered by the size note.
        for chunk in data[..data.len().min(self.stream_max)].chunks(CHUNK) {
            s.write_all(&(chunk.len() as u32).to_be_bytes()).await.map_err(err)?;
            s.write_all(chunk).await.map_err(err)?;
        }
        s.write_all(&0u32.to_be_bytes()).await.map_err(err)?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = s.read(&mut buf).await.map_err(err)?;
            if n == 0 || reply.len() > 4096 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if reply.contains(&0) {
                break;
            }
        }
        let text = String::from_utf8_lossy(&reply).trim_end_matches('\0').trim().to_string();
        if text.is_empty() {
            return Err(ScanError::scanner("clamav", "empty reply"));
        }
        Ok(text)
    }
}

/// Interprets a clamd reply line.
fn parse_reply(text: &str) -> Result<Option<String>, ScanError> {
    let body = text.strip_prefix("stream:").unwrap_or(text).trim();
    if body == "OK" {
        Ok(None)
    } else if let Some(name) = body.strip_suffix(" FOUND") {
        Ok(Some(name.trim().to_string()))
    } else {
        Err(ScanError::scanner("clamav", format!("clamd: {text}")))
    }
}

impl Scanner for ClamavScanner {
    fn id(&self) -> &'static str {
        "clamav"
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        self.mode
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn health(&self) -> BoxFuture<'_, Result<String, ScanError>> {
        Box::pin(
            tokio::time::timeout(Duration::from_secs(5), self.ping())
                .map(|r| r.unwrap_or_else(|_| Err(ScanError::scanner("clamav", "PING timed out")))),
        )
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(async move {
            // clamd's own mail parsing stops at its recursion and size limits
            // (one MIME level deeper than a bare file), so decoded
            // attachments are also streamed on their own; nesting cannot
            // hide malware. Then the whole message.
            for a in input.attachments.iter().take(MAX_ATTACHMENTS) {
                if let Some(name) = parse_reply(&self.instream(&a.data).await?)? {
                    let file = a.name.as_deref().unwrap_or("attachment");
                    return Ok(vec![Finding::new(TAG_VIRUS, format!("{name} in {file}"))]);
                }
            }
            let reply = self.instream(&input.raw).await?;
            Ok(parse_reply(&reply)?
                .map(|name| vec![Finding::new(TAG_VIRUS, name)])
                .unwrap_or_default())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(parse_reply("stream: OK").unwrap(), None);
        assert_eq!(
            parse_reply("stream: Test.EICAR.NDB.UNOFFICIAL FOUND").unwrap().as_deref(),
            Some("Test.EICAR.NDB.UNOFFICIAL")
        );
        assert!(parse_reply("INSTREAM size limit exceeded. ERROR").is_err());
    }
}
