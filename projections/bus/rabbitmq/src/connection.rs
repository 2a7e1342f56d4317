//! One lazily (re)opened connection: connected on first use, replaced on the next use
//! after it was lost.

use std::sync::Arc;

use lapin::{Connection, ConnectionProperties};
use tessera_projections::integration::BusError;
use tokio::sync::Mutex;

use crate::config::RabbitConfig;

/// A connection slot, shared by the bus's clones.
pub(crate) struct Slot {
    url: String,
    described: String,
    name: &'static str,
    current: Mutex<Option<Arc<Connection>>>,
}

impl Slot {
    /// A slot for connections to `url` (with credentials), named `name` in the broker's
    /// connection list.
    pub(crate) fn new(url: &str, described: &str, name: &'static str) -> Self {
        Self {
            url: url.to_owned(),
            described: described.to_owned(),
            name,
            current: Mutex::new(None),
        }
    }

    /// The open connection, connecting first if there is none or it was lost.
    pub(crate) async fn get(&self, config: &RabbitConfig) -> Result<Arc<Connection>, BusError> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref() {
            if c.status().connected() {
                return Ok(Arc::clone(c));
            }
        }
        *current = None;
        let connection = Arc::new(connect(&self.url, &self.described, self.name, config).await?);
        *current = Some(Arc::clone(&connection));
        Ok(connection)
    }

    /// Forgets `connection` (if it is still the current one) and closes it: the next
    /// [`get`](Self::get) connects anew. For a connection that stopped answering.
    pub(crate) async fn discard(&self, connection: &Arc<Connection>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, connection)) {
            *current = None;
        }
        drop(current);
        // Closing waits for the broker's answer, which a stalled link never sends.
        let closing = connection.close(320, "tessera: connection discarded".into());
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), closing).await;
    }
}

/// A new connection to `url`, in bounded time.
pub(crate) async fn connect(
    url: &str,
    described: &str,
    name: &str,
    config: &RabbitConfig,
) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    let runtime = lapin::runtime::default_runtime()
        .map_err(|e| BusError::Unavailable(format!("RabbitMQ at {described}: {e}")))?;
    let connecting = Connection::connect_with_runtime(url, properties, runtime);
    match tokio::time::timeout(config.connect_timeout, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(BusError::Unavailable(format!(
            "cannot connect to RabbitMQ at {described}: {}",
            scrub(&e.to_string(), url)
        ))),
        Err(_) => Err(BusError::Unavailable(format!(
            "cannot connect to RabbitMQ at {described}: no answer within {:?}",
            config.connect_timeout
        ))),
    }
}

/// `text` with the password of `url`, should it appear, replaced.
fn scrub(text: &str, url: &str) -> String {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    let password = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => text.replace(p, "***"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scrub_hides_the_password() {
        let url = "amqp://guest:s3cret@127.0.0.1:5672/%2f";
        assert_eq!(super::scrub("bad s3cret here", url), "bad *** here");
        assert_eq!(super::scrub("fine", "amqp://h"), "fine");
    }
}
