//! Schemas created by the previous release (0.1, before recorded read-side migrations
//! and the one checkpoint table) are upgraded in place when a store starts, keeping
//! their checkpoints; the migrations are recorded and run once.

use tessera_core::Position;
use tessera_projections::process::PgProcess;
use tessera_projections::{PgProjection, Subscriber};

use crate::pg_support::{cleanup, pool, unique, PgSums};
use crate::process_support::Fulfil;

async fn recorded(client: &deadpool_postgres::Object, schema: &str) -> Vec<(String, i32)> {
    client
        .query(
            &format!("SELECT component, version FROM \"{schema}\".tessera_read_migrations ORDER BY component, version"),
            &[],
        )
        .await
        .expect("migrations recorded")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn a_process_schema_of_the_previous_release_is_upgraded_in_place() {
    let pool = pool().await;
    let schema = format!("up_{}", unique());
    let client = pool.get().await.expect("connection");
    let old =
        include_str!("fixtures/process_0_1.sql").replace("{schema}", &format!("\"{schema}\""));
    client.batch_execute(&old).await.expect("the 0.1 schema");
    client
        .execute(
            &format!("INSERT INTO \"{schema}\".checkpoints (process, commit_pos, prepare_pos) VALUES ('fulfil', 12, 13)"),
            &[],
        )
        .await
        .expect("a 0.1 checkpoint");
    let process = PgProcess::new(pool.clone(), Fulfil, &schema)
        .await
        .expect("upgraded");
    assert_eq!(
        process.checkpoint().await.expect("checkpoint"),
        Position::new(12, 13)
    );
    let expected = vec![
        ("checkpoints".to_owned(), 1),
        ("process".to_owned(), 1),
        ("process".to_owned(), 2),
        ("process".to_owned(), 3),
        ("process".to_owned(), 4),
        ("process".to_owned(), 5),
    ];
    assert_eq!(recorded(&client, &schema).await, expected);
    let options: Option<Vec<String>> = client
        .query_one(
            &format!(
                "SELECT reloptions FROM pg_class WHERE oid = '\"{schema}\".instances'::regclass"
            ),
            &[],
        )
        .await
        .expect("instances' options")
        .get(0);
    assert_eq!(
        options,
        Some(vec!["fillfactor=80".to_owned()]),
        "room for HOT updates"
    );
    // Starting again changes nothing.
    let again = PgProcess::new(pool.clone(), Fulfil, &schema)
        .await
        .expect("again");
    assert_eq!(
        again.checkpoint().await.expect("checkpoint"),
        Position::new(12, 13)
    );
    assert_eq!(recorded(&client, &schema).await, expected);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("drop");
}

#[tokio::test]
async fn a_projection_control_schema_of_the_previous_release_is_upgraded_in_place() {
    let pool = pool().await;
    let (name, control) = (
        format!("upsums_{}", unique()),
        format!("upctl_{}", unique()),
    );
    let client = pool.get().await.expect("connection");
    let old =
        include_str!("fixtures/control_0_1.sql").replace("{control}", &format!("\"{control}\""));
    client
        .batch_execute(&old)
        .await
        .expect("the 0.1 control schema");
    client
        .batch_execute(&format!(
            "INSERT INTO \"{control}\".checkpoints (name, version, commit_pos, prepare_pos) VALUES ('{name}', 1, 5, 6);
             INSERT INTO \"{control}\".active (name, version, schema_name) VALUES ('{name}', 1, '{name}_v1');
             CREATE SCHEMA \"{name}_v1\";
             CREATE TABLE \"{name}_v1\".sums (stream text PRIMARY KEY, total bigint NOT NULL);
             CREATE TABLE \"{name}_v1\".applied (event_id uuid PRIMARY KEY, n int NOT NULL);
             INSERT INTO \"{name}_v1\".sums VALUES ('acct-1', 42);"
        ))
        .await
        .expect("a 0.1 projection");
    let projection = PgProjection::with_control_schema(pool.clone(), PgSums::new(&name), &control)
        .await
        .expect("upgraded");
    assert_eq!(projection.active_version().await.expect("version"), 1);
    assert_eq!(
        projection.checkpoint().await.expect("checkpoint"),
        Position::new(5, 6)
    );
    let total: i64 = client
        .query_one(
            &format!("SELECT total FROM \"{name}_v1\".sums WHERE stream = 'acct-1'"),
            &[],
        )
        .await
        .expect("the read model kept")
        .get(0);
    assert_eq!(total, 42);
    assert_eq!(
        recorded(&client, &control).await,
        vec![
            ("checkpoints".to_owned(), 1),
            ("projection_control".to_owned(), 1)
        ]
    );
    cleanup(&pool, &control, &name).await;
}
