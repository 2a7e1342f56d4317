//! Where the PostgreSQL example runs, and a connection check that says what to do.

use std::time::Duration;

use tessera::postgres::{PostgresStore, SchemaName};
use tessera::tokio_postgres::{self, NoTls};

use crate::Error;

/// The database and the schema names of the PostgreSQL example.
#[derive(Debug, Clone)]
pub struct Config {
    /// A PostgreSQL URL.
    pub database_url: String,
    /// The event store's schema; the read model and the saga use schemas named after it
    /// (`{schema}_projections`, `{schema}_balances_v1`, `{schema}_saga`). Lower-case
    /// letters, digits and `_`, at most 30 bytes.
    pub schema: String,
}

impl Config {
    /// `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), schema
    /// `bank_example`.
    pub fn from_env() -> Self {
        Self {
            database_url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
            schema: "bank_example".to_owned(),
        }
    }

    /// `{schema}_{part}`.
    pub fn schema_named(&self, part: &str) -> String {
        format!("{}_{part}", self.schema)
    }

    /// The event store, after checking that PostgreSQL answers (with instructions if not).
    pub async fn connect(&self) -> Result<PostgresStore, Error> {
        let no_database = |reason: String| Error::NoDatabase {
            url: self.database_url.clone(),
            reason,
        };
        let attempt = tokio_postgres::connect(&self.database_url, NoTls);
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(no_database(with_causes(&e))),
            Err(_) => return Err(no_database("no answer within 5 s".into())),
        }
        let schema = SchemaName::new(&self.schema)
            .map_err(|e| Error::Unexpected(format!("schema {:?}: {e}", self.schema)))?;
        let builder = PostgresStore::builder(&self.database_url).schema(schema);
        Ok(builder.build().await?)
    }
}

/// An error and its causes, `: `-separated ("error connecting to server: Connection
/// refused").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text = format!("{text}: {e}");
        cause = e.source();
    }
    text
}
