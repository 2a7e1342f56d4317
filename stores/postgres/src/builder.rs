//! Building a store: connection, pool, migrations, writer.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tessera_core::{StoreError, SubscriptionConfig};
use tokio::sync::{mpsc, watch};
use tokio_postgres::config::Host;
use tokio_postgres::{Config, NoTls};

use crate::error::{map_pg, map_pool};
use crate::sql::Sql;
use crate::store::Inner;
use crate::writer::Writer;
use crate::{migrate, PostgresStore, SchemaName};

/// Settings for a [`PostgresStore`]; [`build`](Builder::build) connects.
#[derive(Debug)]
#[must_use]
pub struct Builder {
    source: Source,
    schema: SchemaName,
    connect_timeout: Duration,
    acquire_timeout: Duration,
    pool_size: usize,
    application_name: Option<String>,
    subscription: SubscriptionConfig,
    max_group: usize,
    writers: usize,
    migrate: bool,
}

#[derive(Debug)]
enum Source {
    Url(String),
    Pool {
        pool: Pool,
        listen: Option<Box<Config>>,
    },
}

impl PostgresStore {
    /// Settings for a store at `url` (`postgres://user@host:port/db`, or key=value form).
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::new(Source::Url(url.into()))
    }

    /// Settings for a store on an existing pool. Subscriptions only poll unless
    /// [`Builder::listen_config`] says how to open the LISTEN connection.
    pub fn from_pool(pool: Pool) -> Builder {
        Builder::new(Source::Pool { pool, listen: None })
    }

    /// Connects to `url` with the default settings (schema `tessera`) and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).build().await
    }
}

impl Builder {
    fn new(source: Source) -> Self {
        Self {
            source,
            schema: SchemaName::default(),
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
            pool_size: 16,
            application_name: None,
            subscription: SubscriptionConfig::default(),
            max_group: 64,
            writers: 2,
            migrate: true,
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

    /// Most appends committed in one shared transaction (default 64; 1 turns group
    /// commit off).
    pub fn max_group_size(mut self, size: usize) -> Self {
        self.max_group = size.max(1);
        self
    }

    /// Writer tasks, each committing groups on a connection of its own (default 2).
    /// Appends go to whichever is free; under load each commits what queued meanwhile.
    pub fn writers(mut self, writers: usize) -> Self {
        self.writers = writers.max(1);
        self
    }

    /// For [`PostgresStore::from_pool`]: how to open the LISTEN connection.
    pub fn listen_config(mut self, config: Config) -> Self {
        if let Source::Pool { listen, .. } = &mut self.source {
            *listen = Some(Box::new(config));
        }
        self
    }

    /// Whether to run migrations on [`build`](Builder::build) (default true).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Connects, migrates the schema and starts the writer task.
    ///
    /// An unreachable database fails with [`StoreError::Unavailable`] naming host and
    /// port, after at most the connect timeout.
    pub async fn build(self) -> Result<PostgresStore, StoreError> {
        let (pool, listen, endpoint) = match self.source {
            Source::Url(ref url) => {
                let mut config: Config = url.parse().map_err(|e| {
                    StoreError::InvalidInput(format!("invalid PostgreSQL connection string: {e}"))
                })?;
                config.connect_timeout(self.connect_timeout);
                match (&self.application_name, config.get_application_name()) {
                    (Some(name), _) => config.application_name(name),
                    (None, None) => config.application_name("tessera"),
                    (None, Some(_)) => &mut config,
                };
                let endpoint = endpoint(&config);
                let manager = Manager::from_config(
                    config.clone(),
                    NoTls,
                    ManagerConfig {
                        recycling_method: RecyclingMethod::Fast,
                    },
                );
                let pool = Pool::builder(manager)
                    .max_size(self.pool_size)
                    .runtime(Runtime::Tokio1)
                    .create_timeout(Some(self.connect_timeout))
                    .wait_timeout(Some(self.acquire_timeout))
                    .build()
                    .map_err(|e| StoreError::backend("building the connection pool", e))?;
                (pool, Some(config), endpoint)
            }
            Source::Pool {
                ref pool,
                ref listen,
            } => {
                let endpoint = listen
                    .as_deref()
                    .map_or_else(|| "the given pool".to_owned(), endpoint);
                (pool.clone(), listen.as_deref().cloned(), endpoint)
            }
        };
        if self.migrate {
            let get = tokio::time::timeout(self.connect_timeout, pool.get());
            let mut client = match get.await {
                Ok(client) => client.map_err(|e| map_pool(e, &endpoint))?,
                Err(_) => {
                    return Err(StoreError::Unavailable {
                        message: format!(
                            "cannot connect to PostgreSQL at {endpoint}: no connection within {:?}",
                            self.connect_timeout
                        ),
                        source: None,
                    })
                }
            };
            migrate::run(&mut client, &self.schema)
                .await
                .map_err(|e| map_pg(e, &format!("migrating schema {}", self.schema), &endpoint))?;
        }
        let sql = Arc::new(Sql::new(&self.schema));
        let endpoint: Arc<str> = endpoint.into();
        let (appended, _) = watch::channel(0);
        let (committed, notified) = watch::channel(0);
        tokio::spawn(crate::notify::run(
            pool.clone(),
            sql.notify.clone(),
            notified,
        ));
        let (jobs, queue) = mpsc::channel(self.max_group.saturating_mul(16).max(1024));
        let writer = Writer {
            pool: pool.clone(),
            sql: sql.clone(),
            endpoint: endpoint.clone(),
            appended: appended.clone(),
            committed,
            max_group: self.max_group,
        };
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..self.writers {
            tokio::spawn(writer.clone().run(queue.clone()));
        }
        Ok(PostgresStore::from_inner(Inner {
            pool,
            sql,
            schema: self.schema,
            endpoint,
            jobs,
            appended,
            listen,
            listener: OnceLock::new(),
            subscription: self.subscription,
        }))
    }
}

/// `host:port` of every host in `config`, for error messages.
fn endpoint(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}/.s.PGSQL.{port}", path.display()),
            }
        })
        .collect();
    if hosts.is_empty() {
        "localhost:5432".to_owned()
    } else {
        hosts.join(",")
    }
}
