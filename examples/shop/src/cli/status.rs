//! `shop projections`: a status table of the read models and saga legs on PostgreSQL.

use tessera_core::{BoxError, EventReader, Position};

use super::Database;
use crate::app::postgres_parts;
use crate::fulfilment::Leg;

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
    let parts = postgres_parts(url, &db.schema_prefix).await?;
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
    for (leg, head) in [
        (Leg::Ordering, heads[0]),
        (Leg::Inventory, heads[1]),
        (Leg::Payment, heads[2]),
    ] {
        rows.push((
            "saga",
            leg.name().to_owned(),
            parts.saga_checkpoints.load(leg.name()).await?,
            head,
        ));
    }
    rows.push((
        "worker",
        "payment_worker".to_owned(),
        parts.worker_checkpoints.load("payment_worker").await?,
        heads[2],
    ));
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
