//! Running a workload on PostgreSQL, in a fresh schema dropped afterwards.

use std::future::Future;

/// Placeholder until the PostgreSQL store lands: reports that it is missing.
pub async fn with_store<F, Fut, T>(_url: &str, _run_id: &str, _f: F) -> Result<T, String>
where
    F: FnOnce(tessera_core::MemoryStore, String) -> Fut,
    Fut: Future<Output = T>,
{
    Err("the PostgreSQL store is not wired into tessera-bench yet; use --store memory".into())
}
