//! One delivery, or a lane's run of them: poison, repeat, held back, or handled and
//! acknowledged.

use std::collections::VecDeque;

use tessera_core::trace::TraceContext;
use tessera_core::Position;

use super::{BatchFailed, InboxHandler, InboxMetrics, InboxStatus, Poison, Shared};
use crate::checkpoint::CheckpointStore;
use crate::integration::{Delivery, Message, MessageKind};

/// Source streams whose position an inbox remembers before it starts afresh (it then
/// reads them from the store again).
const REMEMBERED_STREAMS: usize = 100_000;

/// What to do after a delivery.
pub(super) enum Next {
    Continue,
    /// Stop the inbox on `Poison`. The poisonous delivery, unsettled, comes with it
    /// (and those of its lane's run not handled yet): they are dropped (for the broker
    /// to deliver again after a restart) only once the inbox has stopped reading, so
    /// that a broker redelivering one at once does not hand it to another lane
    /// meanwhile, to be counted and stopped on twice.
    Stop(Poison, Vec<Delivery>),
}

/// Whether `d` may join a run: a readable event (commands need no order) without a
/// trace context (a traced message is handled under its own span, so what it leads
/// to continues its trace).
fn batchable(d: &Delivery) -> bool {
    matches!(&d.message, Ok(m) if m.kind == MessageKind::Event && TraceContext::from_headers(&m.headers).is_none())
}

/// "Handled up to version v" as the position kept in the checkpoint store.
fn handled_to_position(version: u64) -> Position {
    Position::new(version.saturating_add(1), 0)
}

fn position_to_handled(p: Position) -> Option<u64> {
    p.commit.checked_sub(1)
}

impl<H: InboxHandler, C: CheckpointStore> Shared<H, C> {
    /// Handles a lane's deliveries in order: each run of consecutive messages of the
    /// source stream goes to the handler at once ([`InboxHandler::handle_batch`]) and
    /// moves the stream's position once; the others (repeats aside) go one at a time.
    pub(super) async fn deliver_batch(&self, batch: Vec<Delivery>) -> Next {
        let mut rest = VecDeque::from(batch);
        while let Some(d) = rest.pop_front() {
            let next = if rest.is_empty() || !batchable(&d) {
                self.deliver(d).await
            } else {
                rest.push_front(d);
                self.deliver_run(&mut rest).await
            };
            if let Next::Stop(poison, mut unsettled) = next {
                unsettled.extend(rest);
                return Next::Stop(poison, unsettled);
            }
        }
        Next::Continue
    }

    /// Takes from the front of `rest` the repeats (acknowledged) and the run of
    /// messages that follow what the stream's position says was handled, and hands
    /// the run to the handler; a run of one, or what breaks a run, goes back to the
    /// front of `rest` for [`Self::deliver`].
    async fn deliver_run(&self, rest: &mut VecDeque<Delivery>) -> Next {
        let Some(Ok(first)) = rest.front().map(|d| &d.message) else {
            return Next::Continue;
        };
        let stream = first.stream.clone();
        let key = format!("{}:{stream}", self.config.consumer.name);
        let stored = match self.stored(&key).await {
            Ok(p) => p,
            Err(e) => {
                let d = rest.pop_front().expect("a first delivery");
                return self.retry_later(d, &e.to_string()).await;
            }
        };
        let mut last = position_to_handled(stored);
        // The run's deliveries, and their messages as the handler takes them.
        let (mut run, mut messages): (Vec<Delivery>, Vec<Message>) = (Vec::new(), Vec::new());
        while let Some(d) = rest.front() {
            let Ok(m) = &d.message else { break };
            if !batchable(d) || m.stream != stream {
                break;
            }
            if run.is_empty() && position_to_handled(stored) >= Some(m.version) {
                self.update(|s| s.duplicates += 1);
                InboxMetrics::count(&self.metrics.duplicates);
                let _ = rest.pop_front().expect("a delivery").ack().await;
                continue;
            }
            if last >= Some(m.version) || last < m.previous {
                break;
            }
            last = Some(m.version);
            messages.push(m.clone());
            run.push(rest.pop_front().expect("a delivery"));
        }
        if run.len() < 2 {
            for d in run.into_iter().rev() {
                rest.push_front(d);
            }
            return match rest.pop_front() {
                Some(d) => self.deliver(d).await,
                None => Next::Continue,
            };
        }
        let failure = self.handler.handle_batch(&messages).await.err();
        let handled = failure
            .as_ref()
            .map_or(run.len(), |f| f.handled.min(run.len() - 1));
        let mut stored = stored;
        if handled > 0 {
            let to = handled_to_position(messages[handled - 1].version);
            if let Err(e) = self.advance(&key, stored, to).await {
                // Handled but not recorded: delivered again, they are repeats to the
                // (idempotent) handler.
                let error = e.to_string();
                for d in run {
                    let _ = self.retry_later(d, &error).await;
                }
                return Next::Continue;
            }
            stored = to;
        }
        let mut run = run.into_iter();
        for d in run.by_ref().take(handled) {
            let _ = d.ack().await;
        }
        self.update(|s: &mut InboxStatus| s.handled += handled as u64);
        tessera_core::telemetry::increment(&self.metrics.handled, handled as u64);
        let Some(BatchFailed { error, .. }) = failure else {
            return Next::Continue;
        };
        let d = run.next().expect("the failed message is in the run");
        // The ones after it wait for it: delivered one at a time, they are held back
        // until it is handled (or parked).
        for d in run.rev() {
            rest.push_front(d);
        }
        self.failed(
            d,
            &messages[handled],
            Some((&key, stored)),
            error.to_string(),
        )
        .await
    }

    /// Handles one delivery. The caller never hands two deliveries of one source stream
    /// at once.
    pub(super) async fn deliver(&self, d: Delivery) -> Next {
        let message = match &d.message {
            Ok(m) => m.clone(),
            Err(e) => {
                self.update(|s| s.rejected += 1);
                let poison = Poison {
                    stream: String::new(),
                    version: 0,
                    name: String::new(),
                    id: None,
                    error: format!("not an integration message: {e}"),
                };
                return self.poisoned(d, poison).await;
            }
        };
        let key = format!("{}:{}", self.config.consumer.name, message.stream);
        let ordered = message.kind == MessageKind::Event;
        let mut stored = Position::START;
        if ordered {
            stored = match self.stored(&key).await {
                Ok(p) => p,
                Err(e) => return self.retry_later(d, &e.to_string()).await,
            };
            let handled = position_to_handled(stored);
            if handled >= Some(message.version) {
                self.update(|s| s.duplicates += 1);
                InboxMetrics::count(&self.metrics.duplicates);
                let _ = d.ack().await;
                return Next::Continue;
            }
            if handled < message.previous {
                // Perhaps another instance of this inbox handled the predecessor: read
                // the stored position again next time.
                self.forget(&key);
                self.update(|s| s.held_back += 1);
                InboxMetrics::count(&self.metrics.held_back);
                // Longer each time it comes back early, so a predecessor that takes a
                // broker's redelivery timeout to return does not use up the message's
                // deliveries.
                let wait = self
                    .config
                    .hold_back
                    .saturating_mul(d.attempt.max(1))
                    .min(self.config.max_backoff);
                let _ = d.retry(wait).await;
                return Next::Continue;
            }
        }
        let handling = self.handler.handle(&message);
        let handled =
            match crate::traced::processing(self.system, &self.config.consumer.name, &message) {
                Some(span) => tracing::Instrument::instrument(handling, span).await,
                None => handling.await,
            };
        if let Err(e) = handled {
            return self
                .failed(
                    d,
                    &message,
                    ordered.then_some((&key, stored)),
                    e.to_string(),
                )
                .await;
        }
        if ordered {
            let to = handled_to_position(message.version);
            // `false`: another instance of this inbox handled it meanwhile; the handler
            // is idempotent, so the effect is there once either way.
            if let Err(e) = self.advance(&key, stored, to).await {
                return self.retry_later(d, &e.to_string()).await;
            }
        }
        let _ = d.ack().await;
        self.update(|s: &mut InboxStatus| s.handled += 1);
        InboxMetrics::count(&self.metrics.handled);
        Next::Continue
    }

    /// A handler's failure on `d`: poison once its attempts are used up (parked, the
    /// stream's position at `ordered` moves past it), else delivered again later.
    async fn failed(
        &self,
        d: Delivery,
        message: &Message,
        ordered: Option<(&str, Position)>,
        error: String,
    ) -> Next {
        if d.attempt < self.config.max_attempts {
            return self.retry_later(d, &error).await;
        }
        let poison = Poison {
            stream: message.stream.clone(),
            version: message.version,
            name: message.name.clone(),
            id: Some(message.id),
            error,
        };
        let next = self.poisoned(d, poison).await;
        if let (Some((key, stored)), Next::Continue) = (ordered, &next) {
            // Parked, not handled: the stream goes on after it (the dead-letter
            // destination has it), instead of holding back every later event.
            let to = handled_to_position(message.version);
            if let Err(e) = self.advance(key, stored, to).await {
                tracing::warn!(inbox = %self.config.consumer.name, error = %e, "cannot record a parked message");
            }
        }
        next
    }

    /// The stored position of `key`: as this inbox last stored or read it, else read.
    /// Its lanes hand one stream to one task at a time, so the remembered position is
    /// the stored one unless another instance of the inbox moved it, which the
    /// compare-and-set of [`Self::advance`] or a hold-back finds out.
    async fn stored(&self, key: &str) -> Result<Position, tessera_core::BoxError> {
        if let Some(p) = self.known_lock().get(key) {
            return Ok(*p);
        }
        let p = self.positions.load(key).await?;
        self.remember(key, p);
        Ok(p)
    }

    /// Moves `key` from `from` to `to`, remembering the outcome; `false` (another
    /// instance moved it) is not an error: the handler is idempotent.
    async fn advance(
        &self,
        key: &str,
        from: Position,
        to: Position,
    ) -> Result<(), tessera_core::BoxError> {
        match self.positions.advance(key, from, to).await {
            Ok(true) => {
                self.remember(key, to);
                Ok(())
            }
            Ok(false) => {
                self.forget(key);
                Ok(())
            }
            Err(e) => {
                self.forget(key);
                Err(e)
            }
        }
    }

    fn remember(&self, key: &str, p: Position) {
        let mut known = self.known_lock();
        if known.len() >= REMEMBERED_STREAMS && !known.contains_key(key) {
            known.clear();
        }
        known.insert(key.to_owned(), p);
    }

    fn forget(&self, key: &str) {
        self.known_lock().remove(key);
    }

    fn known_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Position>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn retry_later(&self, d: Delivery, error: &str) -> Next {
        tracing::warn!(inbox = %self.config.consumer.name, attempt = d.attempt, error, "message failed; retrying");
        self.update(|s| s.last_error = Some(error.to_owned()));
        let delay = self.config.backoff(d.attempt);
        let _ = d.retry(delay).await;
        Next::Continue
    }

    async fn poisoned(&self, d: Delivery, poison: Poison) -> Next {
        if !self.config.dead_letter {
            // Left unacknowledged: after a restart the broker delivers it again.
            return Next::Stop(poison, vec![d]);
        }
        let reason = poison.error.clone();
        match d.dead_letter(&reason).await {
            Ok(()) => {
                InboxMetrics::count(&self.metrics.dead_lettered);
                self.update(|s| {
                    s.dead_lettered += 1;
                    s.last_error = Some(reason);
                    s.poison = Some(poison);
                });
                Next::Continue
            }
            Err(e) => Next::Stop(
                Poison {
                    error: format!("{reason}; parking it failed: {e}"),
                    ..poison
                },
                Vec::new(),
            ),
        }
    }
}
