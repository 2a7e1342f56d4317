//! TLS to PostgreSQL: each `sslmode` against a private cluster that takes TLS
//! connections only, with a certificate for `localhost` from a CA of the test's own
//! ([`cluster`]); and the settings refused before any connection.

mod cluster;

use std::error::Error;
use std::time::Duration;

use tessera_core::{
    EventAppender, EventFilter, EventReader, ExpectedVersion, Position, ReadStream, StoreError,
    StreamId,
};
use tessera_postgres::tls::{connector_for, SslMode, TlsError};
use tessera_postgres::{PostgresStore, SchemaName};
use tokio_postgres::Client;

use self::cluster::Cluster;
use crate::common::{event, take};

/// `localhost` as the name TLS checks, 127.0.0.1 as where to connect.
const LOCALHOST: &str = "localhost";
const ADDRESS: &str = "127.0.0.1";

/// Connects as `url` says; the error with its sources when it cannot.
async fn connect(url: &str) -> Result<Client, String> {
    let (config, tls) = connector_for(url).map_err(|e| e.to_string())?;
    let (client, connection) = config.connect(tls).await.map_err(|e| chain(&e))?;
    tokio::spawn(connection);
    Ok(client)
}

fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Whether this connection is encrypted, as the server sees it.
async fn encrypted(client: &Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

fn root(ca: &std::path::Path) -> String {
    format!("sslrootcert={}", ca.display())
}

#[tokio::test]
async fn require_connects_encrypted_without_checking_the_certificate() {
    let cluster = Cluster::shared();
    let client = connect(&cluster.url(ADDRESS, "sslmode=require"))
        .await
        .unwrap();
    assert!(encrypted(&client).await);
}

#[tokio::test]
async fn prefer_is_the_default_and_encrypts_when_offered() {
    let cluster = Cluster::shared();
    let url = cluster.url(ADDRESS, "application_name=tls-prefer");
    assert_eq!(connector_for(&url).unwrap().1.mode(), SslMode::Prefer);
    assert!(encrypted(&connect(&url).await.unwrap()).await);
}

#[tokio::test]
async fn verify_full_connects_to_the_host_its_certificate_names() {
    let cluster = Cluster::shared();
    let params = format!(
        "sslmode=verify-full&{}&hostaddr={ADDRESS}",
        root(&cluster.ca)
    );
    let client = connect(&cluster.url(LOCALHOST, &params)).await.unwrap();
    assert!(encrypted(&client).await);
}

#[tokio::test]
async fn verify_full_with_another_host_name_fails_naming_it() {
    let cluster = Cluster::shared();
    let url = cluster.url(
        ADDRESS,
        &format!("sslmode=verify-full&{}", root(&cluster.ca)),
    );
    let error = connect(&url).await.expect_err("refused");
    assert!(
        error.contains("not valid for name")
            && error.contains(ADDRESS)
            && error.contains(LOCALHOST),
        "{error}"
    );

    // The store says the same, as a failure that retrying will not fix.
    let message = store_refusal(&url).await;
    assert!(
        message.contains("certificate was refused")
            && message.contains("not valid for name")
            && message.contains("verify-full"),
        "{message}"
    );
}

#[tokio::test]
async fn verify_ca_checks_the_chain_and_not_the_name() {
    checks_the_chain("verify-ca").await;
}

#[tokio::test]
async fn require_with_a_root_certificate_checks_the_chain_as_libpq_does() {
    checks_the_chain("require").await;
}

/// `mode` with an `sslrootcert`, connecting to an address the certificate does not
/// name: accepted with the server's CA, refused with another.
async fn checks_the_chain(mode: &str) {
    let cluster = Cluster::shared();
    let url = |ca| cluster.url(ADDRESS, &format!("sslmode={mode}&{}", root(ca)));
    assert!(encrypted(&connect(&url(&cluster.ca)).await.unwrap()).await);
    let error = connect(&url(&cluster.other_ca)).await.expect_err("refused");
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn verify_full_without_sslrootcert_trusts_the_system_store_only() {
    let cluster = Cluster::shared();
    let url = cluster.url(
        LOCALHOST,
        &format!("sslmode=verify-full&hostaddr={ADDRESS}"),
    );
    // The test's CA is in no system store: refused, at once if that store is empty.
    let error = connect(&url).await.expect_err("refused");
    assert!(
        error.contains("UnknownIssuer") || error.contains("system trust store"),
        "{error}"
    );
}

#[tokio::test]
async fn disable_against_a_server_that_requires_tls_fails_clearly() {
    let cluster = Cluster::shared();
    let url = cluster.url(ADDRESS, "sslmode=disable");
    let error = connect(&url).await.expect_err("refused");
    assert!(
        error.contains("pg_hba.conf") && error.contains("no encryption"),
        "{error}"
    );

    let message = store_refusal(&url).await;
    assert!(
        message.contains("28000: pg_hba.conf rejects connection")
            && message.contains("no encryption"),
        "{message}"
    );
}

/// The message of the error the store's build at `url` fails with, which must be a
/// [`StoreError::Backend`]: retrying would not help.
async fn store_refusal(url: &str) -> String {
    let built = PostgresStore::builder(url)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .await;
    match built.expect_err("refused") {
        StoreError::Backend { message, .. } => message,
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_store_works_end_to_end_over_require() {
    let cluster = Cluster::shared();
    let url = cluster.url(ADDRESS, "sslmode=require&application_name=tls-store");
    let store = PostgresStore::builder(&url)
        .schema(SchemaName::new("tls_store").unwrap())
        .build()
        .await
        .expect("the store builds over TLS");
    let stream = StreamId::new("order-1").unwrap();
    let mut orders = store.subscribe(Position::START, EventFilter::category("order"));
    store
        .append(&stream, ExpectedVersion::NoStream, vec![event("Placed")])
        .await
        .unwrap();
    let read = store
        .read_stream(&stream, ReadStream::forward())
        .await
        .unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(
        take(&mut orders, 1, Duration::from_secs(10)).await[0].stream_id,
        stream
    );

    // Every connection of the store, the LISTEN one included, is encrypted.
    let raw = connect(&cluster.url(ADDRESS, "sslmode=require"))
        .await
        .unwrap();
    let listen = "SELECT count(*) FROM pg_stat_activity \
                  WHERE application_name = 'tls-store' AND query LIKE 'LISTEN%'";
    let mut listening = 0;
    for _ in 0..100 {
        listening = raw.query_one(listen, &[]).await.unwrap().get::<_, i64>(0);
        if listening > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listening, 1, "the LISTEN connection is open");
    let plain: i64 = raw
        .query_one(
            "SELECT count(*) FROM pg_stat_activity JOIN pg_stat_ssl USING (pid) \
             WHERE application_name = 'tls-store' AND NOT ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(plain, 0);
}

#[test]
fn settings_that_cannot_work_are_refused_before_connecting() {
    let base = "postgres://postgres@127.0.0.1:1/postgres";
    let missing = "/nonexistent/tessera-ca.crt";
    match connector_for(&format!("{base}?sslmode=verify-full&sslrootcert={missing}")) {
        Err(e @ TlsError::RootCertUnreadable { .. }) => {
            assert!(e.to_string().contains(missing), "{e}")
        }
        other => panic!("expected RootCertUnreadable, got {other:?}"),
    }
    let garbage = std::env::temp_dir().join(format!("tessera-not-a-ca-{}.pem", std::process::id()));
    std::fs::write(&garbage, "not a certificate").unwrap();
    let refused = connector_for(&format!(
        "{base}?sslmode=require&sslrootcert={}",
        garbage.display()
    ));
    std::fs::remove_file(&garbage).unwrap();
    assert!(
        matches!(refused, Err(TlsError::RootCertInvalid { .. })),
        "{refused:?}"
    );
    for (params, expected) in [
        ("sslmode=allow", "sslmode=allow is not supported"),
        ("sslmode=bogus", "sslmode=bogus is not supported"),
        (
            "sslrootcert=system&sslmode=require",
            "needs sslmode=verify-full",
        ),
        ("sslmode=verify-full&unknown=1", "unknown option"),
    ] {
        let error = connector_for(&format!("{base}?{params}")).expect_err(params);
        assert!(error.to_string().contains(expected), "{params}: {error}");
    }
    // sslrootcert=system alone means verify-full, as in libpq (when a store exists).
    if let Ok((_, tls)) = connector_for(&format!("{base}?sslrootcert=system")) {
        assert_eq!(tls.mode(), SslMode::VerifyFull);
    }
    // disable reads no root certificate, as in libpq.
    let (_, tls) = connector_for(&format!("{base}?sslmode=disable&sslrootcert={missing}")).unwrap();
    assert_eq!(tls.mode(), SslMode::Disable);
    // The key=value form reads the same parameters.
    let (config, tls) = connector_for("host=h user=u sslmode=disable").unwrap();
    assert_eq!(
        (tls.mode(), config.get_user()),
        (SslMode::Disable, Some("u"))
    );
}

#[tokio::test]
async fn the_store_refuses_a_bad_sslrootcert_as_invalid_input() {
    let url = "postgres://postgres@127.0.0.1:1/postgres?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem";
    match PostgresStore::builder(url).build().await {
        Err(StoreError::InvalidInput(message)) => {
            assert!(message.contains("/nonexistent/ca.pem"), "{message}")
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}
