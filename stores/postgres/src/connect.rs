//! Connecting a [`Builder`]: pool, migrations, the append committer and the notifier task.

use std::sync::{Arc, OnceLock};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tessera_core::StoreError;
use tokio::sync::watch;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::Config;

use crate::append::{Committer, Writer};
use crate::builder::{Builder, Source};
use crate::error::{map_pg, map_pool};
use crate::sql::Sql;
use crate::store::Inner;
use crate::{migrate, PostgresStore};

/// Connects `builder`'s store ([`Builder::build`]): the pool, the migrations, the
/// append committer and the notifier task.
pub(crate) async fn build(builder: Builder) -> Result<PostgresStore, StoreError> {
    let (pool, listen, endpoint) = match builder.source {
        Source::Url(ref url) => {
            let (mut config, tls) = crate::tls::connector_for(url)
                .map_err(|e| StoreError::InvalidInput(e.to_string()))?;
            config.connect_timeout(builder.connect_timeout);
            match (&builder.application_name, config.get_application_name()) {
                (Some(name), _) => config.application_name(name),
                (None, None) => config.application_name("tessera"),
                (None, Some(_)) => &mut config,
            };
            let endpoint = endpoint(&config);
            let manager = Manager::from_config(
                config.clone(),
                tls.clone(),
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            let pool = Pool::builder(manager)
                .max_size(builder.pool_size)
                .runtime(Runtime::Tokio1)
                .create_timeout(Some(builder.connect_timeout))
                .wait_timeout(Some(builder.acquire_timeout))
                .build()
                .map_err(|e| StoreError::backend("building the connection pool", e))?;
            (pool, Some((config, tls)), endpoint)
        }
        Source::Pool {
            ref pool,
            ref listen,
        } => {
            let endpoint = listen
                .as_deref()
                .map_or_else(|| "the given pool".to_owned(), |(c, _)| endpoint(c));
            (pool.clone(), listen.as_deref().cloned(), endpoint)
        }
    };
    if builder.migrate {
        let get = tokio::time::timeout(builder.connect_timeout, pool.get());
        let mut client = match get.await {
            Ok(client) => client.map_err(|e| map_pool(e, &endpoint))?,
            Err(_) => {
                return Err(StoreError::Unavailable {
                    message: format!(
                        "cannot connect to PostgreSQL at {endpoint}: no connection within {:?}",
                        builder.connect_timeout
                    ),
                    source: None,
                })
            }
        };
        migrate::run(&mut client, &builder.schema, builder.migration_lock_timeout)
            .await
            .map_err(|e| {
                let what = if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                    format!(
                        "migrating schema {}: another starter held its migration lock for over {:?}",
                        builder.schema, builder.migration_lock_timeout
                    )
                } else {
                    format!("migrating schema {}", builder.schema)
                };
                map_pg(e, &what, &endpoint)
            })?;
    }
    let sql = Arc::new(Sql::new(&builder.schema));
    let endpoint: Arc<str> = endpoint.into();
    let (appended, _) = watch::channel(0);
    let token = crate::notify::token();
    let listen = builder
        .shared_listener
        .or_else(|| listen.map(|(config, tls)| crate::listen::Listener::new(config, tls)));
    // Stores sharing a LISTEN connection (one database) share its notifier too.
    let notifier = listen.as_ref().map_or_else(
        || Arc::new(crate::notify::Notifier::new()),
        |l| l.notifier(),
    );
    notifier.start(&pool);
    let writer = Writer {
        pool: pool.clone(),
        sql: sql.clone(),
        endpoint: endpoint.clone(),
        appended: appended.clone(),
        notifier,
        hint: Arc::new((builder.schema.channel(), token.clone())),
        max_group: builder.max_group,
    };
    let capacity = builder.max_group.saturating_mul(16).max(1024);
    let committer = Arc::new(Committer::new(writer, builder.writers, capacity));
    Ok(PostgresStore::from_inner(Inner {
        pool,
        sql,
        schema: builder.schema,
        endpoint,
        committer,
        appended,
        listen,
        token,
        listener: OnceLock::new(),
        subscription: builder.subscription,
        recheck: Arc::default(),
        tail: Arc::new(crate::tail::Tail::new(builder.tail_capacity)),
    }))
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
