//! How a [`RabbitBus`](crate::RabbitBus) names its exchanges and queues and how long it
//! waits for the broker.

use std::time::Duration;

/// Settings of a [`RabbitBus`](crate::RabbitBus).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RabbitConfig {
    /// Put before every exchange and every queue name but the consumers': context
    /// `ordering`'s exchange is `{prefix}ordering`, its dead-letter queue
    /// `{prefix}ordering.dead`, its hold for unrouted messages
    /// `{prefix}ordering.unrouted`. Default `tessera.`.
    pub prefix: String,
    /// Longest wait for a connection (TCP and AMQP handshake). Default 5 s.
    pub connect_timeout: Duration,
    /// Longest wait for the broker to confirm a publish. Default 30 s.
    pub confirm_timeout: Duration,
}

impl Default for RabbitConfig {
    fn default() -> Self {
        Self {
            prefix: "tessera.".to_owned(),
            connect_timeout: Duration::from_secs(5),
            confirm_timeout: Duration::from_secs(30),
        }
    }
}

impl RabbitConfig {
    /// The defaults with exchange names starting with `prefix`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The defaults with `timeout` as the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The defaults with `timeout` as the publish-confirmation timeout.
    #[must_use]
    pub fn with_confirm_timeout(mut self, timeout: Duration) -> Self {
        self.confirm_timeout = timeout;
        self
    }

    /// The topic exchange of `context`.
    pub fn exchange(&self, context: &str) -> String {
        format!("{}{context}", self.prefix)
    }

    /// The dead-letter queue of `context` (contexts have no dots, so it never meets
    /// another context's exchange name).
    pub fn dead_letter_queue(&self, context: &str) -> String {
        format!("{}{context}.dead", self.prefix)
    }

    /// The queue (and fanout exchange) holding `context`'s messages that no consumer's
    /// queue was bound for when they were published, until a consumer that wants them
    /// is declared.
    pub fn unrouted_queue(&self, context: &str) -> String {
        format!("{}{context}.unrouted", self.prefix)
    }

    /// The exclusive queue a connection declares while it claims `context`'s held
    /// messages: one claim at a time per context, across processes.
    pub fn claim_lock(&self, context: &str) -> String {
        format!("{}{context}.claiming", self.prefix)
    }
}

/// The AMQP binding key for a subject filter: `*` matches one token in both; a final
/// NATS-style `>` (the rest) becomes `#`.
pub(crate) fn binding_key(filter: &str) -> String {
    filter
        .split('.')
        .map(|token| if token == ">" { "#" } else { token })
        .collect::<Vec<_>>()
        .join(".")
}

/// `url` without its user name and password (`amqp://guest:pw@host:5672/%2f` →
/// `amqp://host:5672/%2f`), for errors, logs and status.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    // A query string may carry secrets too (TLS key passwords): leave it out.
    let path = path.find(['?', '#']).map_or(path, |q| &path[..q]);
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_keys() {
        assert_eq!(binding_key("ordering.>"), "ordering.#");
        assert_eq!(
            binding_key("ordering.*.OrderPlaced"),
            "ordering.*.OrderPlaced"
        );
        assert_eq!(binding_key("inventory.commands.>"), "inventory.commands.#");
        assert_eq!(binding_key("a.b.c"), "a.b.c");
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://u:p@ss@host"), "amqp://host");
        assert_eq!(
            redact("amqps://user:secret@h:5671/v?heartbeat=10"),
            "amqps://h:5671/v"
        );
        assert_eq!(redact("amqp://localhost"), "amqp://localhost");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn names() {
        let c = RabbitConfig::default().with_prefix("t1.");
        assert_eq!(c.exchange("ordering"), "t1.ordering");
        assert_eq!(c.dead_letter_queue("ordering"), "t1.ordering.dead");
        assert_eq!(c.unrouted_queue("ordering"), "t1.ordering.unrouted");
        assert_eq!(c.claim_lock("ordering"), "t1.ordering.claiming");
    }
}
