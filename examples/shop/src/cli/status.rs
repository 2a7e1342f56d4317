//! `shop projections`: a status table of the read models, saga legs and workers on
//! PostgreSQL, from their stored checkpoints (relays too, when their checkpoints are
//! stored).

use tessera_core::BoxError;

use super::Database;
use crate::app::{postgres_parts, stored_inboxes, stored_statuses};

/// Prints one row per runner a server would run, with the figures its admin status route
/// (`GET /v1/admin/projections`) shows: checkpoint, head, lag, and for the saga the
/// commands waiting in its outbox (`BACKLOG`).
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
    let rows = stored_statuses(&parts).await?;
    println!(
        "{:<10} {:<28} {:>22} {:>22} {:>10} {:>8}",
        "KIND", "NAME", "CHECKPOINT", "HEAD", "LAG", "BACKLOG"
    );
    for row in rows {
        let head = row
            .lag
            .head
            .map_or_else(|| "-".to_owned(), |h| h.to_string());
        let backlog = row
            .backlog
            .map_or_else(|| "-".to_owned(), |b| b.waiting.to_string());
        println!(
            "{:<10} {:<28} {:>22} {head:>22} {:>10} {backlog:>8}",
            row.kind.as_str(),
            row.name,
            row.checkpoint.to_string(),
            row.lag.events
        );
        if let Some(b) = row.backlog.filter(|b| b.waiting > 0) {
            let age = b.oldest_age(std::time::SystemTime::now());
            eprintln!(
                "{}: {} commands waiting to be dispatched ({} retrying), the oldest for {:.1}s",
                row.name,
                b.waiting,
                b.retrying,
                age.as_secs_f64()
            );
        }
    }
    let inboxes = stored_inboxes(&parts).await?;
    if !inboxes.is_empty() {
        println!();
        println!(
            "{:<10} {:<28} {:>10} {:>22}",
            "INBOX", "NAME", "STREAMS", "LAST MOVED (s ago)"
        );
        for inbox in inboxes {
            let ago = inbox.last_moved.map_or_else(
                || "-".to_owned(),
                |t| {
                    let age = std::time::SystemTime::now()
                        .duration_since(t)
                        .unwrap_or_default();
                    format!("{:.1}", age.as_secs_f64())
                },
            );
            println!(
                "{:<10} {:<28} {:>10} {ago:>22}",
                inbox.context, inbox.name, inbox.streams
            );
        }
    }
    eprintln!(
        "relays on the in-memory bus keep their checkpoints in the running server, and an \
         inbox's lag is the broker's: GET /v1/admin/projections and /metrics show both"
    );
    Ok(())
}
