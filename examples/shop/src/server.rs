//! Serving the API on a listener until told to stop, within the server's [`Limits`].
//!
//! Connections are accepted up to [`Limits::max_connections`] and served by hyper over
//! HTTP/1, each with a header-read and an idle timeout (see `connection.rs`); the
//! router adds the request timeout, load shedding, the rate limit and the size checks.
//!
//! Shutdown: the listener closes, each connection is closed once the request in
//! progress on it is answered, then every runner stops after its current batch.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use tessera_core::{EventStore, SnapshotStore};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::api;
use crate::app::App;

mod connection;
mod limits;

pub use limits::Limits;

/// Serves `app` on `listener` within `app.settings.limits` until `shutdown` completes,
/// then stops as the module says.
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
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    app.shutdown().await;
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

/// Completes on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
