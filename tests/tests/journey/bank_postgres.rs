//! `cargo run --example bank_postgres`, checked, in schemas of its own (dropped after).
//! Needs PostgreSQL at `DATABASE_URL`; without it, it fails saying how to start one.

use tessera::core::process::Status;
use tessera::tokio_postgres::{self, NoTls};
use tessera_examples::{bank_postgres, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_example_transfers_once_and_undoes_a_refused_transfer() {
    let mut config = Config::from_env();
    config.schema = format!(
        "journey_{}",
        &tessera::uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    let result = bank_postgres::run(&config).await;
    drop_schemas(&config).await;
    let summary = result.unwrap_or_else(|e| panic!("the example failed: {e}"));

    let [(_, first, no_reason), (_, second, reason)] = &summary.transfers[..] else {
        panic!("two transfers expected: {:?}", summary.transfers);
    };
    assert_eq!((*first, no_reason.as_deref()), (Status::Completed, None));
    assert_eq!(*second, Status::Completed, "compensated, then completed");
    let reason = reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("the account is not open"),
        "reason: {reason}"
    );

    // The first transfer moved 30; the second was withdrawn and deposited back.
    let balances: Vec<_> = summary
        .balances
        .iter()
        .map(|(account, cents)| (account.split('-').next().unwrap_or_default(), *cents))
        .collect();
    assert_eq!(balances, [("alice", 70), ("bob", 30)]);
}

/// Drops every schema the run made: the store's and those named after it.
async fn drop_schemas(config: &Config) {
    let Ok((client, connection)) = tokio_postgres::connect(&config.database_url, NoTls).await
    else {
        return; // the run has already said that PostgreSQL does not answer
    };
    tokio::spawn(connection);
    let like = format!("{}%", config.schema);
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1",
            &[&like],
        )
        .await
        .expect("list schemas");
    for row in rows {
        let schema: String = row.get(0);
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .expect("drop schema");
    }
}
