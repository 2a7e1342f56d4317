//! Catch-up subscriptions to the global log.
//!
//! Every store's subscription is the same loop: read a batch after the last delivered
//! position, hand it over through a bounded channel, and when the log is drained wait for
//! a wake-up hint or the poll interval, whichever comes first. There is no separate
//! "live" path, so the hand-over from catch-up to live cannot open a gap or deliver a
//! duplicate: the position only moves forward, one delivered event at a time. Wake-ups
//! are hints; polling is the correctness path.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::{EventFilter, EventReader, Position, ReadAll, RecordedEvent, StoreError};

/// Tuning for a polling subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionConfig {
    /// Events read per query.
    pub batch_size: usize,
    /// Events buffered between the reader and a slow consumer (back-pressure beyond).
    pub buffer: usize,
    /// How long to wait for a wake-up before reading again anyway.
    pub poll_interval: Duration,
    /// First delay before retrying after the store is unavailable (doubles, capped at 5 s).
    pub retry_delay: Duration,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            batch_size: 512,
            buffer: 1024,
            poll_interval: Duration::from_millis(250),
            retry_delay: Duration::from_millis(50),
        }
    }
}

/// A wake-up hint source: its value changes after events were appended.
pub type Wakeup = watch::Receiver<u64>;

/// A running catch-up subscription. Dropping it stops the reader task.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tessera_core::{EventAppender, EventFilter, EventReader, ExpectedVersion, MemoryStore, NewEvent, Position, StreamId};
/// let store = MemoryStore::new();
/// let mut sub = store.subscribe(Position::START, EventFilter::category("order"));
/// let stream = StreamId::new("order-1").unwrap();
/// let event = NewEvent::json("Placed", &serde_json::json!({})).unwrap();
/// store.append(&stream, ExpectedVersion::NoStream, vec![event]).await.unwrap();
/// let got = sub.next().await.unwrap().unwrap();
/// assert_eq!(got.stream_id, stream);
/// # });
/// ```
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Result<RecordedEvent, StoreError>>,
    task: JoinHandle<()>,
}

impl Subscription {
    /// Starts the polling loop over `reader` from `after`, woken by `wakeup` when given.
    pub fn polling<R: EventReader>(
        reader: R,
        after: Position,
        filter: EventFilter,
        wakeup: Option<Wakeup>,
        config: SubscriptionConfig,
    ) -> Self {
        let (tx, rx) = mpsc::channel(config.buffer.max(1));
        let task = tokio::spawn(poll_loop(reader, after, filter, wakeup, config, tx));
        Self { rx, task }
    }

    /// The next event, or the error that ended the subscription. `None` once it ended.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, StoreError>> {
        self.rx.recv().await
    }

    /// Takes everything already buffered, without waiting, up to `max` events.
    pub fn try_next_batch(&mut self, max: usize) -> Vec<Result<RecordedEvent, StoreError>> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.rx.try_recv() {
                Ok(item) => out.push(item),
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll_loop<R: EventReader>(
    reader: R,
    mut after: Position,
    filter: EventFilter,
    mut wakeup: Option<Wakeup>,
    config: SubscriptionConfig,
    tx: mpsc::Sender<Result<RecordedEvent, StoreError>>,
) {
    let batch_size = config.batch_size.max(1);
    let mut retry = config.retry_delay;
    loop {
        // Mark the hint as seen before reading, so an append that lands after this read
        // changes it again and the wait below returns at once.
        if let Some(w) = wakeup.as_mut() {
            w.borrow_and_update();
        }
        let read = ReadAll::after(after, batch_size).filter(filter.clone());
        match reader.read_all(read).await {
            Ok(batch) => {
                retry = config.retry_delay;
                let full = batch.len() >= batch_size;
                for event in batch {
                    debug_assert!(event.position > after, "store returned an old position");
                    after = event.position;
                    if tx.send(Ok(event)).await.is_err() {
                        return; // The subscriber is gone.
                    }
                }
                if !full && !wait_for_more(&mut wakeup, &tx, config.poll_interval).await {
                    return;
                }
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, delay_ms = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX), "subscription read failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(retry) => {}
                    () = tx.closed() => return,
                }
                retry = (retry * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Waits for a hint or the poll interval; `false` when the subscriber is gone.
async fn wait_for_more(
    wakeup: &mut Option<Wakeup>,
    tx: &mpsc::Sender<Result<RecordedEvent, StoreError>>,
    poll: Duration,
) -> bool {
    let hint = async {
        let open = match wakeup.as_mut() {
            Some(w) => w.changed().await.is_ok(),
            None => false,
        };
        if !open {
            // A closed or missing hint channel leaves polling to do the work.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = hint => true,
        () = tokio::time::sleep(poll) => true,
        () = tx.closed() => false,
    }
}
