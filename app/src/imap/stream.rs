//! One stream type for plain and TLS connections, so a session's type does
//! not depend on how it was secured. Every byte the server sends passes the
//! literal guard before async-imap sees it.

use super::guard::{LiteralGuard, LiteralRefused};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Plain TCP or TLS over TCP.
#[derive(Debug)]
enum Transport {
    /// Loopback-only plain connection.
    Plain(TcpStream),
    /// TLS (implicit or after STARTTLS).
    Tls(Box<TlsStream<TcpStream>>),
}

/// A server connection with the literal guard on its read side.
#[derive(Debug)]
pub struct ImapStream {
    io: Transport,
    guard: LiteralGuard,
    /// Once refused, the connection stays refused: the literal is still on
    /// the wire, so nothing after it can be read in sync.
    refused: Option<LiteralRefused>,
}

impl ImapStream {
    /// A plain connection whose responses may carry at most `max_literal`
    /// literal bytes each.
    pub(super) fn plain(tcp: TcpStream, max_literal: u64) -> Self {
        Self::with(Transport::Plain(tcp), max_literal)
    }

    /// A TLS connection, guarded like [`ImapStream::plain`].
    pub(super) fn tls(tls: TlsStream<TcpStream>, max_literal: u64) -> Self {
        Self::with(Transport::Tls(Box::new(tls)), max_literal)
    }

    fn with(io: Transport, max_literal: u64) -> Self {
        Self {
            io,
            guard: LiteralGuard::new(max_literal),
            refused: None,
        }
    }

    /// The TCP stream under a plain connection (for STARTTLS).
    pub(super) fn into_plain(self) -> Option<TcpStream> {
        match self.io {
            Transport::Plain(t) => Some(t),
            Transport::Tls(_) => None,
        }
    }
}

impl AsyncRead for ImapStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(r) = this.refused {
            return Poll::Ready(Err(std::io::Error::other(r)));
        }
        let start = buf.filled().len();
        match &mut this.io {
            Transport::Plain(s) => ready!(Pin::new(s).poll_read(cx, buf))?,
            Transport::Tls(s) => ready!(Pin::new(s.as_mut()).poll_read(cx, buf))?,
        }
        let Err((keep, r)) = this.guard.inspect(&buf.filled()[start..]) else {
            return Poll::Ready(Ok(()));
        };
        // Hand on only what precedes the announcement's line end; the next
        // read reports the refusal. With nothing to hand on, report it now
        // (an empty read would look like a clean EOF).
        this.refused = Some(r);
        buf.set_filled(start + keep);
        if keep == 0 {
            return Poll::Ready(Err(std::io::Error::other(r)));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
