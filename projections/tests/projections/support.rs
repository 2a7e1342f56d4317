use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    BoxError, EventAppender, EventFilter, EventId, ExpectedVersion, MemoryStore, NewEvent,
    Position, RecordedEvent, StreamId,
};
use tessera_projections::MemoryHandler;

pub const WAIT: Duration = Duration::from_secs(20);

/// Per-stream sums of `amount`, plus how often each event id was applied.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub sums: HashMap<String, i64>,
    pub applied: HashMap<EventId, u32>,
}

/// Sums amounts of the `acct` category; fails on events whose amount is negative while
/// `strict` is set (a poison event that a "fixed" handler accepts).
pub struct SumHandler {
    pub name: String,
    pub strict: Arc<AtomicBool>,
}

impl SumHandler {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            strict: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl MemoryHandler for SumHandler {
    type Model = Totals;

    fn name(&self) -> &str {
        &self.name
    }

    fn filter(&self) -> EventFilter {
        EventFilter::category("acct")
    }

    fn handle(&self, model: &mut Totals, event: &RecordedEvent) -> Result<(), BoxError> {
        let value = event.data.to_value()?;
        let amount = value["amount"].as_i64().ok_or("amount missing")?;
        if amount < 0 && self.strict.load(Ordering::SeqCst) {
            return Err(format!("negative amount {amount}").into());
        }
        *model.sums.entry(event.stream_id.to_string()).or_default() += amount;
        *model.applied.entry(event.id).or_default() += 1;
        Ok(())
    }
}

pub async fn deposit(store: &MemoryStore, stream: &str, amount: i64) -> Position {
    let stream = StreamId::new(stream).expect("valid stream id");
    let event =
        NewEvent::json("Deposited", &serde_json::json!({ "amount": amount })).expect("json");
    store
        .append(&stream, ExpectedVersion::Any, vec![event])
        .await
        .expect("append")
        .position
}

/// The model a from-scratch fold of the whole log gives.
pub async fn from_scratch(store: &MemoryStore) -> Totals {
    use tessera_core::{EventReader, ReadAll};
    let handler = SumHandler::new("scratch");
    handler.strict.store(false, Ordering::SeqCst);
    let mut model = Totals::default();
    let events = store
        .read_all(ReadAll::after(Position::START, usize::MAX).filter(EventFilter::category("acct")))
        .await
        .expect("read_all");
    for e in &events {
        handler.handle(&mut model, e).expect("handle");
    }
    model
}
