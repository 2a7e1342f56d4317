//! `shop projections`: a status table of the read models and saga legs on PostgreSQL.

use tessera_core::{BoxError, EventReader, Position};

use super::Database;
use crate::app::postgres_parts;

fn lag(head: Option<Position>, at: Position) -> u64 {
    head.map_or(0, |h| h.prepare.saturating_sub(at.prepare))
}

/// Prints one row per projection and saga leg.
pub async fn run(db: Database) -> Result<(), BoxError> {
    let Some(url) = &db.database_url else {
        return Err(
            "projections needs --database-url (or DATABASE_URL); a running server shows \
                    the same at GET /v1/admin/projections"
                .into(),
        );
    };
    let parts = postgres_parts(
        url,
        &db.schema_prefix,
        crate::fulfilment::Fulfilment {
            payment_timeout: std::time::Duration::from_secs(30),
        },
    )
    .await?;
    let (v, s) = (&parts.views, &parts.stores);
    let heads = [
        s.ordering.head().await?,
        s.inventory.head().await?,
        s.payment.head().await?,
    ];
    let mut rows = vec![
        (
            "projection",
            v.orders.name(),
            v.orders.checkpoint().await?,
            heads[0],
        ),
        (
            "projection",
            v.products.name(),
            v.products.checkpoint().await?,
            heads[1],
        ),
        (
            "projection",
            v.reservations.name(),
            v.reservations.checkpoint().await?,
            heads[1],
        ),
        (
            "projection",
            v.payments.name(),
            v.payments.checkpoint().await?,
            heads[2],
        ),
    ];
    let saga = match &parts.saga {
        crate::app::SagaStore::Pg(p) => tessera_projections::Subscriber::checkpoint(p).await?,
        crate::app::SagaStore::Memory(m) => tessera_projections::Subscriber::checkpoint(m).await?,
    };
    rows.push(("saga", "fulfilment".to_owned(), saga, heads[0]));
    for (name, head) in [
        ("fulfilment_inbox_inventory", heads[1]),
        ("fulfilment_inbox_payment", heads[2]),
    ] {
        rows.push((
            "relay",
            name.to_owned(),
            parts.relay_checkpoints.load(name).await?,
            head,
        ));
    }
    println!(
        "{:<10} {:<28} {:>22} {:>22} {:>10}",
        "KIND", "NAME", "CHECKPOINT", "HEAD", "LAG"
    );
    for (kind, name, at, head) in rows {
        let head_text = head.map_or_else(|| "-".to_owned(), |h| h.to_string());
        println!(
            "{kind:<10} {name:<28} {:>22} {head_text:>22} {:>10}",
            at.to_string(),
            lag(head, at)
        );
    }
    Ok(())
}
