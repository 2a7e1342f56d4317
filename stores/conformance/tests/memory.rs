//! The conformance suite against the embedded in-memory store, and the browsing cases
//! against a store that declines them.

use std::time::Duration;

use tessera_conformance::{cases, Browsing, StoreFactory};
use tessera_core::testkit::Forward;
use tessera_core::{
    ListStreams, MemoryStore, Position, RecordedEvent, StoreError, StreamInfo, SubscriptionConfig,
};

/// Fresh in-memory stores; small subscription batches so catch-up takes several reads.
struct Memory;

impl StoreFactory for Memory {
    type Store = MemoryStore;

    async fn create(&self, _test_name: &'static str) -> MemoryStore {
        MemoryStore::with_config(SubscriptionConfig {
            batch_size: 7,
            buffer: 16,
            poll_interval: Duration::from_millis(100),
            ..SubscriptionConfig::default()
        })
    }

    fn browsing(&self) -> Browsing {
        Browsing::Answers
    }
}

tessera_conformance::conformance_suite!(Memory);

/// The memory store answering every browsing read with `Ok(None)`, as a store without
/// them does.
#[derive(Clone, Default)]
struct Declining(MemoryStore);

impl Forward for Declining {
    type Inner = MemoryStore;

    fn inner(&self) -> &MemoryStore {
        &self.0
    }

    async fn categories(
        &self,
        _: Option<&str>,
        _: usize,
    ) -> Result<Option<Vec<String>>, StoreError> {
        Ok(None)
    }

    async fn streams(&self, _: ListStreams) -> Result<Option<Vec<StreamInfo>>, StoreError> {
        Ok(None)
    }

    async fn correlated(
        &self,
        _: uuid::Uuid,
        _: Position,
        _: usize,
    ) -> Result<Option<Vec<RecordedEvent>>, StoreError> {
        Ok(None)
    }
}

#[tokio::test]
async fn browsing_cases_skip_a_store_that_may_decline() {
    let may = Browsing::MayDecline;
    cases::categories_in_byte_order(Declining::default(), may).await;
    cases::streams_in_byte_order(Declining::default(), may).await;
    cases::correlated_events(Declining::default(), may).await;
}

#[tokio::test]
#[should_panic(expected = "declares Browsing::Answers")]
async fn categories_fail_a_store_declared_to_answer_that_declines() {
    cases::categories_in_byte_order(Declining::default(), Browsing::Answers).await;
}

#[tokio::test]
#[should_panic(expected = "declares Browsing::Answers")]
async fn streams_fail_a_store_declared_to_answer_that_declines() {
    cases::streams_in_byte_order(Declining::default(), Browsing::Answers).await;
}

#[tokio::test]
#[should_panic(expected = "declares Browsing::Answers")]
async fn correlated_fails_a_store_declared_to_answer_that_declines() {
    cases::correlated_events(Declining::default(), Browsing::Answers).await;
}
