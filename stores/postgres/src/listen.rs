//! LISTEN for appends on a connection of its own, as a wake-up hint for subscriptions.
//!
//! The hint only shortens the wait between polls: a missed notification costs one poll
//! interval, never an event. The connection is reopened with backoff whenever it ends,
//! and subscribers are woken after each reconnect in case something was missed.

use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, Config, Connection, Socket};

use crate::error::describe;
use crate::tls::Connector;

const FIRST_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Listens on `channel` until aborted, bumping `appended` on each notification whose
/// payload is not `own` (a store's own hints: its writers woke its subscribers already).
pub(crate) async fn run(
    config: Config,
    tls: Connector,
    (channel, own): (String, String),
    appended: watch::Sender<u64>,
) {
    let mut delay = FIRST_DELAY;
    loop {
        let started = Instant::now();
        match listen_once(&config, &tls, (&channel, &own), &appended).await {
            Ok(()) => tracing::warn!(channel, "LISTEN connection closed; reconnecting"),
            Err(e) => {
                tracing::warn!(channel, error = %describe(&e), "LISTEN connection failed; reconnecting")
            }
        }
        bump(&appended);
        if started.elapsed() > MAX_DELAY {
            delay = FIRST_DELAY;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

async fn listen_once(
    config: &Config,
    tls: &Connector,
    (channel, own): (&str, &str),
    appended: &watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let mut messages = pin!(forward(&mut connection, own, appended));
    let listen = format!("LISTEN \"{channel}\"");
    tokio::select! {
        r = client.batch_execute(&listen) => r?,
        r = &mut messages => return r,
    }
    tracing::debug!(channel, "listening for appends");
    // Appends made before LISTEN took effect sent no notification we will see.
    bump(appended);
    let result = messages.await;
    drop(client);
    result
}

/// Drives the connection, turning notifications into wake-ups, until it ends.
async fn forward<T: AsyncRead + AsyncWrite + Unpin>(
    connection: &mut Connection<Socket, T>,
    own: &str,
    appended: &watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error> {
    poll_fn(|cx| loop {
        match connection.poll_message(cx) {
            Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) if n.payload() == own => {}
            Poll::Ready(Some(Ok(AsyncMessage::Notification(_)))) => bump(appended),
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
            Poll::Ready(None) => return Poll::Ready(Ok(())),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

fn bump(appended: &watch::Sender<u64>) {
    appended.send_modify(|v| *v = v.wrapping_add(1));
}
