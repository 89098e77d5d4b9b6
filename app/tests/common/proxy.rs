//! A loopback TCP proxy that can cut every connection or black-hole traffic
//! (a half-open connection: nothing is closed, nothing gets through).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub port: u16,
    cut: watch::Sender<u64>,
    blackhole: Arc<AtomicBool>,
    pub accepted: Arc<AtomicU64>,
    /// Connections accepted and not yet closed.
    pub open: Arc<AtomicU64>,
    /// Bytes the server has sent through the proxy, all connections.
    pub down: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, rx) = watch::channel(0u64);
        let blackhole = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicU64::new(0));
        let down = Arc::new(AtomicU64::new(0));
        let (bh, acc, live, counted) = (blackhole.clone(), accepted.clone(), open.clone(), down.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                acc.fetch_add(1, Ordering::SeqCst);
                live.fetch_add(1, Ordering::SeqCst);
                let (rx, bh, live, counted) = (rx.clone(), bh.clone(), live.clone(), counted.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        pipe(client, server, rx, bh, counted).await;
                    }
                    live.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Proxy {
            port,
            cut,
            blackhole,
            accepted,
            open,
            down,
            task,
        }
    }

    /// Drops every open connection (both directions, abruptly).
    pub fn cut_all(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    /// Stops forwarding bytes without closing anything.
    pub fn set_blackhole(&self, on: bool) {
        self.blackhole.store(on, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut_all();
        self.task.abort();
    }
}

async fn pipe(client: TcpStream, server: TcpStream, mut cut: watch::Receiver<u64>, bh: Arc<AtomicBool>, counted: Arc<AtomicU64>) {
    cut.mark_unchanged();
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let bh2 = bh.clone();
    let up = async move {
        let mut buf = vec![0u8; 16384];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while bh.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 16384];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while bh2.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            counted.fetch_add(n as u64, Ordering::SeqCst);
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = cut.changed() => {}
        _ = async { tokio::join!(up, down) } => {}
    }
}
