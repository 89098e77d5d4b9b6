//! One stream type for plain and TLS connections, so a session's type does
//! not depend on how it was secured. Every byte the server sends passes the
//! literal guard and the quirk reader before async-imap sees it.

use super::guard::LiteralRefused;
use super::quirks::ResponseReader;
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

/// A server connection with the literal guard and the quirk reader on its
/// read side.
#[derive(Debug)]
pub struct ImapStream {
    io: Transport,
    reader: ResponseReader,
    /// What the reader let through, not yet handed to async-imap.
    ready: Vec<u8>,
    /// How much of `ready` has been handed on.
    given: usize,
    eof: bool,
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
            reader: ResponseReader::new(max_literal),
            ready: Vec::new(),
            given: 0,
            eof: false,
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
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // The server's bytes land in the caller's buffer and go through the
        // reader into `ready` (no buffer of our own per connection). The
        // reader may hold back part of a line, so one read of the server
        // can let nothing through: read again until something is ready,
        // the server has nothing more for now, or it closed.
        while this.given == this.ready.len() {
            this.ready.clear();
            this.given = 0;
            if let Some(r) = this.refused {
                return Poll::Ready(Err(std::io::Error::other(r)));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let start = buf.filled().len();
            match &mut this.io {
                Transport::Plain(s) => ready!(Pin::new(s).poll_read(cx, buf))?,
                Transport::Tls(s) => ready!(Pin::new(s.as_mut()).poll_read(cx, buf))?,
            }
            let pushed = if buf.filled().len() == start {
                this.eof = true;
                this.reader.finish(&mut this.ready)
            } else {
                this.reader.push(&buf.filled()[start..], &mut this.ready)
            };
            buf.set_filled(start);
            // What precedes a refused announcement's line end is still
            // handed on; the read after it reports the refusal.
            if let Err(r) = pushed {
                this.refused = Some(r);
            }
        }
        let n = buf.remaining().min(this.ready.len() - this.given);
        buf.put_slice(&this.ready[this.given..this.given + n]);
        this.given += n;
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
