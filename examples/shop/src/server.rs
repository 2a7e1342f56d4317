//! Serving the API on a listener until told to stop, within the server's [`Limits`].
//!
//! Connections are accepted up to [`Limits::max_connections`] and served by hyper over
//! HTTP/1, each with a header-read and an idle timeout (see `connection.rs`); the
//! router adds the request timeout, load shedding, the rate limit and the size checks.
//!
//! Shutdown: readiness turns 503 at once, the listener closes (new connections are
//! refused), requests in flight are answered and their connections closed, and those
//! still running at [`Limits::shutdown_deadline`] are cut. Then every runner stops after
//! its current batch, keeping its checkpoint; one still in a batch when what is left of
//! the deadline (at least [`RUNNER_GRACE`]) runs out is abandoned with the process,
//! its batch uncommitted.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use tessera_core::{EventStore, SnapshotStore};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::api;
use crate::app::App;

mod connection;
mod limits;

pub use limits::Limits;

/// The least time runners get to stop after the requests, even when the deadline has
/// passed: a clean stop usually takes a batch's time.
pub const RUNNER_GRACE: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` within `app.settings.limits` until `shutdown` completes,
/// then drains and stops as the module says.
pub async fn serve<S: EventStore + SnapshotStore>(
    app: Arc<App<S>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = app.settings.limits;
    let router = api::router(app.clone());
    let mut http = http1::Builder::new();
    http.header_read_timeout(None)
        .max_buf_size(limits.head_buffer());
    let http = Arc::new(http);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(io::Error::other)?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            Some(_) = connections.join_next() => continue,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (router, http, stopped) = (router.clone(), http.clone(), stopped.clone());
        connections.spawn(async move {
            connection::serve(stream, peer, router, http, limits, stopped).await;
            drop(slot);
        });
    }
    app.drain();
    drop(listener);
    let deadline = Instant::now() + limits.shutdown_deadline;
    tracing::info!(
        connections = connections.len(),
        deadline_s = limits.shutdown_deadline.as_secs_f64(),
        "draining: readiness answers 503, new connections are refused"
    );
    let _ = stop.send(true);
    let drained = tokio::time::timeout_at(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if !drained {
        tracing::warn!(
            connections = connections.len(),
            "shutdown deadline reached: cutting the requests still in flight"
        );
        connections.shutdown().await;
    }
    if !app
        .shutdown_until(deadline.max(Instant::now() + RUNNER_GRACE))
        .await
    {
        tracing::warn!(
            "runners still in a batch at the deadline are abandoned: their checkpoints stay \
             at their last committed batch"
        );
    }
    Ok(())
}

/// An error of one connection that the listener can go on after.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: call it before saying the server is
/// up, so that a signal sent as soon as it says so stops it gracefully instead of
/// killing it (the default action of a signal nobody handles). Needs a runtime.
pub fn signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let received = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = received(interrupt) => {}
                () = received(terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down");
    }
}
