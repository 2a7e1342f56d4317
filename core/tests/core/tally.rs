//! The test aggregate: a running total with a label, and the test doubles around it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tessera_core::{
    Aggregate, DomainEvent, MemoryStore, NewEvent, ReadStream, RecordedEvent, StreamId,
};
use tessera_core::{EventData, EventReader};

/// State: the sum of every `Added`, how many there were, and the last label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub total: i64,
    pub adds: u64,
    pub label: String,
}

/// Commands.
#[derive(Debug, Clone)]
pub enum Cmd {
    /// One `Added`.
    Add(i64),
    /// Two `Added` events in one command.
    AddTwice(i64),
    /// This many `Added { amount: 1 }` in one command.
    AddMany(usize),
    /// Decides nothing.
    Nothing,
    /// One `Renamed`.
    Rename(String),
    /// Refused.
    Refuse,
    /// An `Added`, then an event whose data cannot be serialized to JSON.
    Poison,
    /// Starts a tally at `n` (refused below zero), or adds `n` to one that exists:
    /// decided without a read first ([`Aggregate::starts_stream`]).
    Open(i64),
}

/// Events. `Added` is at schema version 2 (version 1 stored `{"n": ...}`); `Increased`
/// is its retired name, upcast to `Added`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TallyEvent {
    #[serde(rename = "Added")]
    Added { amount: i64 },
    #[serde(rename = "Renamed")]
    Renamed { label: String },
    /// JSON object keys must be strings: this never serializes.
    #[serde(rename = "Poisoned")]
    Poisoned { map: HashMap<(u8, u8), u8> },
}

impl DomainEvent for TallyEvent {
    fn schema_version(event_type: &str) -> u32 {
        match event_type {
            "Added" | "Increased" => 2,
            _ => 1,
        }
    }
}

/// Why a command was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TallyError {
    #[error("refused")]
    Refused,
    #[error("the total would overflow")]
    Overflow,
}

impl Aggregate for Tally {
    const CATEGORY: &'static str = "tally";
    type Command = Cmd;
    type Event = TallyEvent;
    type Error = TallyError;
    type Services = ();

    fn starts_stream(command: &Cmd) -> bool {
        matches!(command, Cmd::Open(_))
    }

    fn apply(&mut self, event: &TallyEvent) {
        match event {
            TallyEvent::Added { amount } => {
                self.total += amount;
                self.adds += 1;
            }
            TallyEvent::Renamed { label } => self.label.clone_from(label),
            TallyEvent::Poisoned { .. } => {}
        }
    }

    fn decide(&self, command: &Cmd, (): &()) -> Result<Vec<TallyEvent>, TallyError> {
        let add = |amount: i64| {
            self.total
                .checked_add(amount)
                .map(|_| TallyEvent::Added { amount })
                .ok_or(TallyError::Overflow)
        };
        Ok(match command {
            Cmd::Add(n) => vec![add(*n)?],
            Cmd::AddTwice(n) => vec![add(*n)?, TallyEvent::Added { amount: *n }],
            Cmd::AddMany(n) => vec![TallyEvent::Added { amount: 1 }; *n],
            Cmd::Nothing => Vec::new(),
            Cmd::Rename(label) => vec![TallyEvent::Renamed {
                label: label.clone(),
            }],
            Cmd::Refuse => return Err(TallyError::Refused),
            Cmd::Open(n) if self.adds == 0 && *n < 0 => return Err(TallyError::Refused),
            Cmd::Open(n) => vec![add(*n)?],
            Cmd::Poison => vec![
                TallyEvent::Added { amount: 1 },
                TallyEvent::Poisoned {
                    map: HashMap::from([((1, 2), 3)]),
                },
            ],
        })
    }
}

/// The stream of tally `id`.
pub fn stream(id: &str) -> StreamId {
    StreamId::new(format!("tally-{id}")).expect("valid stream id")
}

/// Every event of tally `id`.
pub async fn events(store: &MemoryStore, id: &str) -> Vec<RecordedEvent> {
    store
        .read_stream(&stream(id), ReadStream::forward())
        .await
        .expect("read_stream")
}

/// A raw event as an older version of the code would have stored it.
pub fn raw(event_type: &str, schema_version: u32, data: serde_json::Value) -> NewEvent {
    NewEvent::new(event_type, EventData::to_json(&data).expect("JSON"))
        .with_schema_version(schema_version)
}
