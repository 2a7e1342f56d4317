//! Commands queued for one aggregate, decided one after the other on its state and
//! appended together ([`CommandHandler::with_coalescing`]).
//!
//! A hot aggregate (the one product of a flash sale) takes its commands through its
//! writer lane one at a time, each waiting for its own append to commit: one commit per
//! command. Queued instead, the commands that arrive while one batch is being written go
//! in the next: each is decided on the state the previous one left and all their events
//! go in one append, expecting the version the batch was decided on, so the stream moves
//! once per batch. Any doubt falls back to the one-command path for every command of the
//! batch (which looks things up as it always did): a store that does not refuse taken
//! ids, an append that is refused or lands as a repeat. A refusal or a decision without
//! events is answered on the one-command path after the batch, since it appends nothing
//! that would catch a stale state.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::append;
use super::cache::Cached;
use super::replay::{FirstRun, KeyedRuns};
use super::run::Run;
use crate::{
    Aggregate, AppendOutcome, CommandError, CommandHandler, CommandOptions, CommandOutcome,
    EventStore, ExpectedVersion, Landing, StreamId, Version,
};

type Reply<A> = oneshot::Sender<Result<CommandOutcome, CommandError<<A as Aggregate>::Error>>>;

/// A command waiting for its aggregate's batch.
pub(super) struct Item<A: Aggregate> {
    /// The command's span, made by its caller: its trace continues in the events.
    pub(super) span: tracing::Span,
    pub(super) command: A::Command,
    pub(super) options: CommandOptions,
    pub(super) reply: Reply<A>,
}

/// The queued commands by stream. A stream has an entry while a task leads its batches.
pub(super) struct Queues<A: Aggregate> {
    map: Mutex<HashMap<StreamId, Vec<Item<A>>>>,
}

impl<A: Aggregate> Default for Queues<A> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
        }
    }
}

impl<A: Aggregate> Queues<A> {
    fn map(&self) -> MutexGuard<'_, HashMap<StreamId, Vec<Item<A>>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`; `true` when no task leads `stream`'s batches (the caller starts
    /// one).
    pub(super) fn push(&self, stream: &StreamId, item: Item<A>) -> bool {
        let mut map = self.map();
        match map.get_mut(stream) {
            Some(queued) => {
                queued.push(item);
                false
            }
            None => {
                map.insert(stream.clone(), vec![item]);
                true
            }
        }
    }

    /// What queued for `stream` since the last take; empty (and the stream's entry
    /// gone, so the next push starts a leader) when nothing did.
    fn take(&self, stream: &StreamId) -> Vec<Item<A>> {
        let mut map = self.map();
        match map.get_mut(stream) {
            Some(queued) if !queued.is_empty() => std::mem::take(queued),
            _ => {
                map.remove(stream);
                Vec::new()
            }
        }
    }
}

/// An accepted command of a batch: where its events are in the append.
struct Accepted<A: Aggregate> {
    item: Item<A>,
    first: usize,
    count: usize,
}

impl<A: Aggregate, S: EventStore> CommandHandler<A, S> {
    /// Runs `stream`'s batches until nothing is queued for it.
    pub(super) async fn lead(self, stream: StreamId, queues: std::sync::Arc<Queues<A>>) {
        loop {
            let items = queues.take(&stream);
            if items.is_empty() {
                return;
            }
            let _turn = match &self.lanes {
                Some(lanes) => Some(lanes.enter(&stream).await),
                None => None,
            };
            if items.len() == 1 || !self.store.rejects_taken_ids() {
                self.one_by_one(&stream, items).await;
            } else {
                self.batch(&stream, items).await;
            }
        }
    }

    /// Each command on the one-command path, in order, in its own span.
    async fn one_by_one(&self, stream: &StreamId, items: Vec<Item<A>>) {
        for item in items {
            let run = async {
                let mut options = item.options;
                crate::trace::inject(&mut options.metadata);
                let outcome = Run::new(self, stream.clone(), options)
                    .handle(&item.command)
                    .await;
                self.metrics.handled(&outcome);
                tracing::Span::current()
                    .record("tessera.command.outcome", super::metered::outcome(&outcome));
                outcome
            };
            let outcome = tracing::Instrument::instrument(run, item.span.clone()).await;
            let _ = item.reply.send(outcome);
        }
    }

    /// Decides `items` one after the other on the stream's state and appends every
    /// accepted command's events at once.
    async fn batch(&self, stream: &StreamId, items: Vec<Item<A>>) {
        let cached = self.cache.as_ref().and_then(|c| c.take(stream));
        let (mut loaded, mut runs) = match cached {
            Some(Cached { loaded, runs }) => (loaded, runs),
            None => match self.load_stream(stream, None).await {
                Ok((loaded, _)) => (loaded, KeyedRuns::default()),
                Err(_) => return self.one_by_one(stream, items).await,
            },
        };
        let expected = ExpectedVersion::from_current(loaded.version);
        let mut later = Vec::new();
        let mut accepted = Vec::new();
        let mut events = Vec::new();
        let mut decided = 0u64;
        for item in items {
            let key = item.options.idempotency_key.as_deref();
            if let Some(first) = key.and_then(|k| runs.of(k)) {
                let answer = first.answer(stream.clone(), item.options.fingerprint);
                let _ = item.reply.send(answer);
                continue;
            }
            let new = match loaded.state.decide(&item.command, &self.services) {
                Ok(new) if !new.is_empty() => new,
                // Nothing to append would catch a stale state: after the batch.
                _ => {
                    later.push(item);
                    continue;
                }
            };
            let (fingerprint, metadata) = (item.options.fingerprint, &item.options.metadata);
            let mut metadata = metadata.clone();
            item.span.in_scope(|| crate::trace::inject(&mut metadata));
            match append::encode::<A::Event, A::Error>(stream, &new, key, fingerprint, &metadata) {
                Ok(encoded) => {
                    for event in &new {
                        loaded.state.apply(event);
                    }
                    accepted.push(Accepted {
                        item,
                        first: events.len(),
                        count: encoded.len(),
                    });
                    events.extend(encoded);
                    decided += new.len() as u64;
                }
                Err(e) => {
                    let _ = item.reply.send(Err(e));
                }
            }
        }
        if accepted.is_empty() {
            self.keep(stream, loaded, runs);
            return self.one_by_one(stream, later).await;
        }
        // The append's span under the first command's (it writes for all of them).
        let append =
            append::append_retrying_unknown(&self.store, &self.retry, stream, expected, events);
        let written = tracing::Instrument::instrument(append, accepted[0].item.span.clone()).await;
        let outcome = match written {
            Ok((outcome, Landing::Written)) => outcome,
            // Refused, a repeat, or unknown: each command again, on its own path.
            _ => {
                let items = accepted.into_iter().map(|a| a.item).chain(later).collect();
                return self.one_by_one(stream, items).await;
            }
        };
        for a in accepted {
            let first_version = Version(outcome.first_version.0 + a.first as u64);
            let own = AppendOutcome {
                first_version,
                version: Version(first_version.0 + a.count as u64 - 1),
                // The batch's last event: at or after this command's own last one, so a
                // reader waiting for it sees this command's events.
                position: outcome.position,
            };
            if let Some(key) = a.item.options.idempotency_key.as_deref() {
                runs = runs.with(
                    key,
                    FirstRun::written(a.item.options.fingerprint, &own, a.count),
                );
            }
            let result = Ok(CommandOutcome {
                stream_id: stream.clone(),
                version: Some(own.version),
                position: Some(own.position),
                events: a.count,
                replayed: false,
            });
            self.metrics.handled(&result);
            a.item
                .span
                .record("tessera.command.outcome", super::metered::outcome(&result));
            let _ = a.item.reply.send(result);
        }
        loaded.events_since_snapshot += decided;
        loaded.version = Some(outcome.version);
        if let Some(snapshots) = &self.snapshots {
            let since = loaded.events_since_snapshot;
            if snapshots
                .save_if_due(stream, &loaded.state, outcome.version, since)
                .await
            {
                loaded.events_since_snapshot = 0;
            }
        }
        self.keep(stream, loaded, runs);
        self.one_by_one(stream, later).await;
    }
}
