//! Bank accounts on PostgreSQL, with a transfer saga. Needs PostgreSQL at
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! The code is in `src/bank_postgres.rs` and `src/transfer.rs`.

use tessera_examples::{bank_postgres, Config};

#[tokio::main]
async fn main() {
    let summary = match bank_postgres::run(&Config::from_env()).await {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("transfers (saga instances):");
    for (id, status, reason) in &summary.transfers {
        let reason = reason.as_deref().unwrap_or("");
        println!("  {id:<12} {status:<10} {reason}");
    }
    println!("balances (read model, in cents):");
    for (account, cents) in &summary.balances {
        println!("  {account:<16} {cents:>6}");
    }
}
