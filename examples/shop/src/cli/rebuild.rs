//! `shop rebuild`: zero-downtime rebuilds on PostgreSQL with a progress bar.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tessera_core::BoxError;

use super::RebuildArgs;
use crate::app::{postgres_parts, rebuild_named, REBUILDABLE};

/// Rebuilds one projection or all of them.
pub async fn run(args: RebuildArgs) -> Result<(), BoxError> {
    let Some(url) = &args.database.database_url else {
        return Err(
            "rebuild needs --database-url (or DATABASE_URL). In-memory read models live in a \
                    running server: use POST /v1/admin/projections/{name}/rebuild there."
                .into(),
        );
    };
    let names: Vec<String> = if args.all {
        REBUILDABLE.iter().map(|n| (*n).to_owned()).collect()
    } else {
        let name = args.projection.clone().unwrap_or_default();
        if !REBUILDABLE.contains(&name.as_str()) {
            return Err(format!(
                "no projection named {name:?}; known: {}",
                REBUILDABLE.join(", ")
            )
            .into());
        }
        vec![name]
    };
    let parts = postgres_parts(
        url,
        &args.database.schema_prefix,
        crate::fulfilment::Fulfilment {
            payment_timeout: std::time::Duration::from_secs(30),
        },
    )
    .await?;
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} events {msg}")
        .map_err(|e| e.to_string())?
        .progress_chars("=> ");
    for name in names {
        let bar = ProgressBar::new(0)
            .with_style(style.clone())
            .with_prefix(name.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        let events = rebuild_named(&parts.views, &parts.stores, &name, |p| {
            bar.set_length(p.total_estimate.max(p.done));
            bar.set_position(p.done);
            let eta = p
                .eta
                .map_or_else(|| "?".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()));
            bar.set_message(format!("{:.0}/s, eta {eta}", p.events_per_s));
        })
        .await?;
        bar.finish_with_message(format!("done: {events} events, took over"));
    }
    Ok(())
}
