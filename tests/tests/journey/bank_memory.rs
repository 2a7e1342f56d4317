//! `cargo run --example bank_memory`, checked.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_example_reads_its_writes_and_refuses_an_overdraft() {
    let summary = tessera_examples::bank_memory::run()
        .await
        .unwrap_or_else(|e| panic!("the example failed: {e}"));
    let balances: Vec<_> = summary.balances.into_iter().collect();
    assert_eq!(balances, [("alice".to_owned(), 70), ("bob".to_owned(), 20)]);
    assert!(
        summary.retry_replayed,
        "the retried withdrawal landed twice"
    );
    assert_eq!(
        summary.refused.to_string(),
        "insufficient funds: balance 20, asked 50"
    );
}
