//! The mutual-TLS listener behind every TLS service of a node: a timeout per
//! handshake, a cap on handshakes in progress, failed handshakes logged and
//! dropped without hurting the server, and connections closed once the other
//! side has sent nothing for the idle timeout.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::{server::TlsStream, TlsAcceptor};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel backlog.
pub const MAX_CONCURRENT_HANDSHAKES: usize = 64;
/// How long a connection may go without a byte from the other side before it
/// is closed. Live sessions never reach it: the servers ping every
/// `KEEPALIVE_INTERVAL`, and a live peer's HTTP/2 stack answers each ping.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Interval of HTTP/2 keepalive pings, on both the servers and the peer links.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a keepalive ping may go unanswered before the connection is dropped.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits of a TLS listener.
#[derive(Debug, Clone, Copy)]
pub struct TlsLimits {
    /// Time allowed for one handshake.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once.
    pub max_handshakes: usize,
    /// Silence after which an established connection is closed.
    pub idle_timeout: Duration,
}

impl Default for TlsLimits {
    fn default() -> Self {
        TlsLimits {
            handshake_timeout: HANDSHAKE_TIMEOUT,
            max_handshakes: MAX_CONCURRENT_HANDSHAKES,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// A listener's TLS configuration, replaced whole when it changes (a new CRL).
pub type ServerTls = watch::Receiver<Arc<rustls::ServerConfig>>;

/// A configuration that never changes.
pub fn fixed(config: rustls::ServerConfig) -> ServerTls {
    watch::channel(Arc::new(config)).1
}

/// Accepts TCP connections, completes TLS handshakes under the limits and
/// yields the established streams, for `serve_with_incoming`. The accept loop
/// stops when the returned stream is dropped.
pub fn tls_incoming(
    listener: TcpListener,
    config: ServerTls,
    limits: TlsLimits,
) -> ReceiverStream<Result<IdleTimeout<TlsStream<TcpStream>>, std::io::Error>> {
    let (established, receiver) = mpsc::channel(limits.max_handshakes);
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                permit = handshakes.clone().acquire_owned() => permit.expect("semaphore is never closed"),
                _ = established.closed() => return,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(reason = %error, "accept failed");
                        continue;
                    }
                },
                _ = established.closed() => return,
            };
            // Without TCP_NODELAY small replies wait out the peer's delayed ACK (~40 ms).
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(peer = %peer, reason = %error, "cannot set TCP_NODELAY");
            }
            // The configuration in force now: a reloaded CRL applies from the next handshake.
            let acceptor = TlsAcceptor::from(config.borrow().clone());
            let established = established.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Some(stream) = handshake(&acceptor, tcp, peer, limits.handshake_timeout).await {
                    let _ = established.send(Ok(IdleTimeout::new(stream, limits.idle_timeout))).await;
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    limit: Duration,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::warn!(peer = %peer, reason = %error, "tls handshake refused");
            None
        }
        Err(_) => {
            tracing::warn!(peer = %peer, timeout = ?limit, "tls handshake timed out");
            None
        }
    }
}

/// A connection that fails its reads once the other side has been silent for
/// `timeout`, so that a vanished or stalling peer does not hold a connection
/// (and the session tasks behind it) for ever.
pub struct IdleTimeout<S> {
    inner: S,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        IdleTimeout { inner, timeout, deadline: Box::pin(tokio::time::sleep(timeout)) }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.deadline.as_mut().reset(Instant::now() + this.timeout);
                Poll::Ready(result)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("nothing received for {:?}: connection closed as idle", this.timeout),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Hands on the TLS connection's details (the client certificate above all).
impl<S: Connected> Connected for IdleTimeout<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_silent_connection_fails_its_read_after_the_idle_timeout() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut conn = IdleTimeout::new(ours, Duration::from_millis(50));
        let error = conn.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_connection_that_keeps_talking_outlives_the_idle_timeout() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let timeout = Duration::from_millis(200);
        let mut conn = IdleTimeout::new(ours, timeout);
        let talker = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(timeout / 4).await;
                theirs.write_all(b"ping").await.unwrap();
            }
        });
        let mut received = 0;
        while received < 40 {
            received += conn.read(&mut [0u8; 8]).await.expect("no idle timeout while the peer talks");
        }
        talker.await.unwrap();
    }
}
