//! Bank accounts on the in-memory store, with a balance read model.
//! The code is in `src/bank_memory.rs`, the aggregate in `src/account.rs`.

#[tokio::main]
async fn main() {
    let summary = match tessera_examples::bank_memory::run().await {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("balances (read model, in cents):");
    for (account, cents) in &summary.balances {
        println!("  {account:<8} {cents:>6}");
    }
    println!("retried withdrawal replayed: {}", summary.retry_replayed);
    println!("same key, other amount refused: {}", summary.key_reused);
    println!("overdraft refused: {}", summary.refused);
}
