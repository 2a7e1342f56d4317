//! A store's settings, and [`Builder::build`] (the connecting itself is in `connect`).

use std::time::Duration;

use deadpool_postgres::Pool;
use tessera_core::{StoreError, SubscriptionConfig};
use tokio_postgres::Config;

use crate::tls::Connector;
use crate::{PostgresStore, SchemaName};

/// Settings for a [`PostgresStore`]; [`build`](Builder::build) connects.
#[derive(Debug)]
#[must_use]
pub struct Builder {
    pub(crate) source: Source,
    pub(crate) schema: SchemaName,
    pub(crate) connect_timeout: Duration,
    pub(crate) migration_lock_timeout: Duration,
    pub(crate) acquire_timeout: Duration,
    pub(crate) pool_size: usize,
    pub(crate) application_name: Option<String>,
    pub(crate) subscription: SubscriptionConfig,
    pub(crate) tail_capacity: usize,
    pub(crate) max_group: usize,
    pub(crate) writers: usize,
    pub(crate) migrate: bool,
    pub(crate) shared_listener: Option<std::sync::Arc<crate::listen::Listener>>,
}

pub(crate) enum Source {
    Url(String),
    Pool {
        pool: Pool,
        listen: Option<Box<(Config, Connector)>>,
    },
}

/// Never prints a password: a URL's is replaced by `***` (`tokio_postgres::Config`
/// redacts its own).
impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Url(url) => f.debug_tuple("Url").field(&redact(url)).finish(),
            Source::Pool { listen, .. } => f
                .debug_struct("Pool")
                .field("listen", listen)
                .finish_non_exhaustive(),
        }
    }
}

/// `url` with the password of its user part and of any `password=` parameter replaced
/// by `***`.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let user = &out[rest..rest + at];
            if let Some(colon) = user.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    let mut redacted = String::with_capacity(out.len());
    for part in out.split_inclusive(['&', '?', ' ']) {
        match part.find('=') {
            Some(k) if part[..k].trim_start().eq_ignore_ascii_case("password") => {
                redacted.push_str(&part[..=k]);
                redacted.push_str("***");
                if let Some(sep) = part.chars().last().filter(|c| matches!(c, '&' | '?' | ' ')) {
                    redacted.push(sep);
                }
            }
            _ => redacted.push_str(part),
        }
    }
    redacted
}

impl Builder {
    pub(crate) fn new(source: Source) -> Self {
        Self {
            source,
            schema: SchemaName::default(),
            connect_timeout: Duration::from_secs(10),
            migration_lock_timeout: Duration::from_secs(60),
            acquire_timeout: Duration::from_secs(30),
            pool_size: 16,
            application_name: None,
            subscription: SubscriptionConfig::default(),
            tail_capacity: crate::tail::DEFAULT_CAPACITY,
            max_group: 64,
            writers: 2,
            migrate: true,
            shared_listener: None,
        }
    }

    /// The schema holding the tables (default `tessera`); created if missing.
    pub fn schema(mut self, schema: SchemaName) -> Self {
        self.schema = schema;
        self
    }

    /// Longest wait for a new connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait at [`build`](Builder::build) for another starter's migration of the
    /// same schema to finish (default 60 s). Past it the build fails with a transient
    /// [`StoreError::Unavailable`] naming the held lock; a starter that only finds the
    /// schema up to date holds the lock for a few milliseconds.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let builder = tessera_postgres::PostgresStore::builder("postgres://postgres@127.0.0.1/test")
    ///     .migration_lock_timeout(Duration::from_secs(300)); // a slow migration may be running
    /// # drop(builder);
    /// ```
    pub fn migration_lock_timeout(mut self, timeout: Duration) -> Self {
        self.migration_lock_timeout = timeout;
        self
    }

    /// Longest wait for a free pooled connection (default 30 s).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Connections in the pool built from a URL (default 16).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// `application_name` of the connections built from a URL (default: the URL's, or
    /// `tessera`), as `pg_stat_activity` shows it.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// Tuning of subscriptions (batch size, buffer, poll interval).
    pub fn subscription_config(mut self, config: SubscriptionConfig) -> Self {
        self.subscription = config;
        self
    }

    /// Events kept in memory by the log reader this store's subscriptions share
    /// (default 4,096; 0: each subscription reads the database itself).
    ///
    /// One task reads the log forward for all of them, woken by appends, and a
    /// subscription whose position lies within the newest `events` reads them from
    /// memory: one read transaction per wake-up for the store instead of one per
    /// subscription. A subscription further behind reads the database until it reaches
    /// them. Delivery is the same either way: gap-free, in log order.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tessera_core::StoreError> {
    /// let store = tessera_postgres::PostgresStore::builder("postgres://app@db/shop")
    ///     .shared_reader_buffer(16_384)
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn shared_reader_buffer(mut self, events: usize) -> Self {
        self.tail_capacity = events;
        self
    }

    /// Most appends committed in one shared transaction (default 64; 1 turns group
    /// commit off).
    pub fn max_group_size(mut self, size: usize) -> Self {
        self.max_group = size.max(1);
        self
    }

    /// Append connections, each committing one group at a time (default 2); each is
    /// taken from the pool at its first append and kept: size the pool for them plus
    /// readers. An append that finds one free leads a group on it at once, in its
    /// caller's task; under load each commits what queued meanwhile.
    pub fn writers(mut self, writers: usize) -> Self {
        self.writers = writers.max(1);
        self
    }

    /// For [`PostgresStore::from_pool`]: how to open the LISTEN connection, with the
    /// TLS of its URL ([`tls::connector_for`](crate::tls::connector_for) gives both).
    ///
    /// ```no_run
    /// # fn f(pool: tessera_postgres::deadpool_postgres::Pool) -> Result<(), tessera_postgres::tls::TlsError> {
    /// let (config, tls) = tessera_postgres::tls::connector_for("postgres://app@db/shop?sslmode=require")?;
    /// let builder = tessera_postgres::PostgresStore::from_pool(pool).listen_config(config, tls);
    /// # drop(builder); Ok(()) }
    /// ```
    pub fn listen_config(mut self, config: Config, tls: Connector) -> Self {
        if let Source::Pool { listen, .. } = &mut self.source {
            *listen = Some(Box::new((config, tls)));
        }
        self
    }

    /// Listens for appends on `other`'s LISTEN connection instead of opening one: for
    /// several stores of one process in one database (a schema each). The server
    /// signals every listening connection of a database on every `NOTIFY` in it,
    /// whatever the channel, and each signalled connection spends a transaction reading
    /// the queue, so three stores listening on one connection cost the server a third
    /// of what three connections cost. The stores share the `NOTIFY` side as well: the
    /// hints that their appends committed go out together, one statement (one
    /// transaction) per interval for all of them. `other` must be on the same
    /// database: its connection settings are used. If `other` has no LISTEN connection (a pool store
    /// without [`listen_config`](Builder::listen_config)), this store's own settings
    /// apply.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), tessera_core::StoreError> {
    /// use tessera_postgres::PostgresStore;
    /// let url = "postgres://app@db/shop";
    /// let schema = |s: &str| tessera_postgres::SchemaName::new(s).expect("a schema name");
    /// let orders = PostgresStore::builder(url).schema(schema("ordering")).build().await?;
    /// let stock = PostgresStore::builder(url)
    ///     .schema(schema("inventory"))
    ///     .listen_with(&orders)
    ///     .build()
    ///     .await?;
    /// # drop(stock); Ok(()) }
    /// ```
    pub fn listen_with(mut self, other: &PostgresStore) -> Self {
        self.shared_listener = other.inner().listen.clone();
        self
    }

    /// Whether to run migrations on [`build`](Builder::build) (default true).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Connects, migrates the schema and starts the notifier task.
    ///
    /// An unreachable database fails with [`StoreError::Unavailable`] naming host and
    /// port, after at most the connect timeout. A server certificate that fails the
    /// URL's `sslmode` check, or a server refusing the connection (say, plain text where
    /// it requires TLS), fails with [`StoreError::Backend`] giving the reason; a bad
    /// `sslmode` or `sslrootcert` with [`StoreError::InvalidInput`] ([`crate::tls`]).
    pub async fn build(self) -> Result<PostgresStore, StoreError> {
        crate::connect::build(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_password() {
        for url in [
            "postgres://u:s3cretpw@h:5432/db",
            "postgres://u:s3cretpw@h/db?sslmode=require",
            "postgres://u@h/db?password=s3cretpw&sslmode=require",
            "host=h user=u password=s3cretpw dbname=db",
        ] {
            let shown = format!("{:?}", Source::Url(url.to_owned()));
            assert!(!shown.contains("s3cretpw"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        let plain = format!("{:?}", Source::Url("postgres://u@h/db".to_owned()));
        assert!(plain.contains("postgres://u@h/db"), "{plain}");
    }
}
