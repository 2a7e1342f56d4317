//! Running a workload on PostgreSQL, in a fresh schema dropped afterwards.

use std::future::Future;

use tessera_postgres::{PostgresStore, SchemaName};

/// Builds a [`PostgresStore`] (with `writers` group-commit writers) in a fresh schema
/// `bench_{run_id}`, runs `f` with it and
/// the schema's name, then drops the schema (whatever `f` returned).
pub async fn with_store<F, Fut, T>(
    url: &str,
    run_id: &str,
    writers: usize,
    f: F,
) -> Result<T, String>
where
    F: FnOnce(PostgresStore, String) -> Fut,
    Fut: Future<Output = T>,
{
    let schema = format!("bench_{run_id}");
    let name = SchemaName::new(&schema).map_err(|e| e.to_string())?;
    let store = PostgresStore::builder(url)
        .schema(name)
        .pool_size(48)
        .writers(writers)
        .build()
        .await
        .map_err(|e| format!("cannot open the PostgreSQL store at {url}: {e}"))?;
    let out = f(store, schema.clone()).await;
    let client = crate::baseline::connect(url).await?;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .map_err(|e| format!("dropping schema {schema}: {e}"))?;
    Ok(out)
}
