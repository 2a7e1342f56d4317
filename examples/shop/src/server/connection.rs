//! One connection: hyper serving the router over HTTP/1, closed when its client is too
//! slow to send a request's head or leaves it idle too long, shut down gracefully when
//! the server stops.
//!
//! The two timeouts are kept here rather than by hyper's `header_read_timeout`: hyper
//! starts that timer when it waits for the next request, so an idle keep-alive
//! connection would be closed after the header timeout too, and the two could not
//! differ (a short header timeout against slow clients, a long idle one for proxies).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};
use tower::ServiceExt;

use super::Limits;

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// A request's head is arriving, since then.
    Head(Instant),
    /// A request is being answered.
    Busy,
    /// Waiting for the next request, since then.
    Idle(Instant),
}

/// A connection's phase, moved on by its reads and by the requests it serves.
#[derive(Debug)]
struct Clock {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Clock {
    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
        self.changed.notify_one();
    }

    fn get(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: on an idle connection, a request's head starts.
    fn arrived(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*phase, Phase::Idle(_)) {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// When the current phase runs out, if it can.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match self.get() {
            Phase::Head(since) => Some(since + limits.header_read_timeout),
            Phase::Idle(since) => Some(since + limits.idle_timeout),
            Phase::Busy => None,
        }
    }
}

/// Marks the connection busy while it lives: from a request's head to its answer.
struct Busy(Arc<Clock>);

impl Busy {
    fn begin(clock: &Arc<Clock>) -> Self {
        clock.set(Phase::Busy);
        Self(clock.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(Phase::Idle(Instant::now()));
    }
}

/// The socket, telling the clock when bytes arrive.
struct Watched {
    io: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.arrived();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Serves `stream` from `peer` until the client leaves, a timeout closes it, or `stop`
/// turns true (then the request in progress is answered, and the connection closed).
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    http: Arc<http1::Builder>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let clock = Arc::new(Clock {
        phase: Mutex::new(Phase::Head(Instant::now())),
        changed: Notify::new(),
    });
    let io = TokioIo::new(Watched {
        io: stream,
        clock: clock.clone(),
    });
    let requests = clock.clone();
    let service = service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let busy = Busy::begin(&requests);
        let answer = router.clone().oneshot(req);
        async move {
            let response = answer.await;
            drop(busy);
            response
        }
    });
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = clock.deadline(&limits);
        let wake = deadline.unwrap_or_else(|| Instant::now() + limits.idle_timeout);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = clock.changed.notified() => {}
            () = sleep_until(wake), if deadline.is_some() => {
                if clock.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    let phase = clock.get();
                    tracing::debug!(%peer, ?phase, "connection timed out: closed");
                    return;
                }
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
