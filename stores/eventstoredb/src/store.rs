//! The `EventStore` implementation over the `eventstore` client.

use std::sync::Arc;

use eventstore::{
    AppendToStreamOptions, Client, ClientSettings, ReadAllOptions, ReadStreamOptions,
    StreamPosition, SubscribeToAllOptions, SubscriptionFilter,
};
use tessera_core::{
    AppendOutcome, Direction, EventAppender, EventFilter, EventId, EventReader, ExpectedVersion,
    NewEvent, Position, ReadAll, ReadStream, RecordedEvent, StoreError, StreamId, Subscription,
    SubscriptionConfig, Version,
};
use tokio::sync::watch;

use crate::map;

/// Events read per request when scanning `$all`.
const PAGE: usize = 512;

/// A Tessera event store on EventStoreDB. Cheap to clone.
///
/// Create it inside a tokio runtime (the client spawns its connection task there).
#[derive(Clone)]
pub struct EventStoreDbStore {
    client: Client,
    prefix: Arc<str>,
    config: SubscriptionConfig,
    wakeup: watch::Receiver<u64>,
    _wake_task: Arc<AbortOnDrop>,
}

impl std::fmt::Debug for EventStoreDbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStoreDbStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl EventStoreDbStore {
    /// Connects with an `esdb://` (or `esdb+discover://`) connection string.
    pub fn connect(connection_string: &str) -> Result<Self, StoreError> {
        Self::connect_with_prefix(connection_string, "")
    }

    /// Connects, keeping every stream under `prefix` (written as `{prefix}{stream}`;
    /// reads see only those streams, with the prefix removed). Lets several
    /// applications, or tests, share one server without seeing each other.
    pub fn connect_with_prefix(connection_string: &str, prefix: &str) -> Result<Self, StoreError> {
        let settings: ClientSettings = connection_string.parse().map_err(|e| {
            StoreError::InvalidInput(format!("invalid EventStoreDB connection string: {e}"))
        })?;
        let client = Client::new(settings)
            .map_err(|e| StoreError::unavailable("cannot create the EventStoreDB client", e))?;
        let (tx, rx) = watch::channel(0u64);
        let task = tokio::spawn(wake_on_appends(client.clone(), tx));
        Ok(Self {
            client,
            prefix: Arc::from(prefix),
            config: SubscriptionConfig::default(),
            wakeup: rx,
            _wake_task: Arc::new(AbortOnDrop(task)),
        })
    }

    /// Uses `config` for subscriptions.
    #[must_use]
    pub fn with_subscription_config(mut self, config: SubscriptionConfig) -> Self {
        self.config = config;
        self
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The prefix every stream of this store is kept under.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn name(&self, stream: &StreamId) -> String {
        format!("{}{}", self.prefix, stream)
    }

    /// Maps a client event to Tessera's, without the prefix; `None` for events outside it.
    fn own(&self, e: &eventstore::RecordedEvent) -> Option<Result<RecordedEvent, StoreError>> {
        let stripped = e.stream_id.strip_prefix(&*self.prefix)?;
        if map::is_system(&e.stream_id, &e.event_type)
            || stripped.starts_with(crate::snapshot::SNAPSHOT_STREAM)
        {
            return None;
        }
        Some(map::recorded_as(e, stripped))
    }
}

impl EventAppender for EventStoreDbStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        tessera_core::check_batch(stream, &events)?;
        let n = events.len() as u64;
        let data = events
            .iter()
            .map(map::event_data)
            .collect::<Result<Vec<_>, _>>()?;
        let options =
            AppendToStreamOptions::default().expected_revision(map::expected_revision(expected));
        let span = tracing::debug_span!("append", stream = %stream, %expected, batch = n);
        let written = tracing::Instrument::instrument(
            self.client
                .append_to_stream(self.name(stream), &options, data),
            span,
        )
        .await
        .map_err(|e| map::error(e, Some((stream, expected))))?;
        let last = written.next_expected_version;
        Ok(AppendOutcome {
            first_version: Version((last + 1).saturating_sub(n)),
            version: Version(last),
            position: map::position(written.position),
        })
    }
}

impl EventReader for EventStoreDbStore {
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if read.limit == 0 {
            return Err(StoreError::InvalidInput(
                "read limit must be at least 1".into(),
            ));
        }
        let mut options = ReadStreamOptions::default().max_count(read.limit);
        let (options, default_start) = match read.direction {
            Direction::Forward => (options.forwards(), StreamPosition::Start),
            Direction::Backward => {
                options = options.backwards();
                (options, StreamPosition::End)
            }
        };
        let start = read
            .from
            .map_or(default_start, |v| StreamPosition::Position(v.0));
        let options = options.position(start);
        let mut out = Vec::new();
        let mut events = match self.client.read_stream(self.name(stream), &options).await {
            Ok(events) => events,
            Err(eventstore::Error::ResourceNotFound) => return Ok(out),
            Err(e) => return Err(map::error(e, None)),
        };
        loop {
            match events.next().await {
                Ok(Some(e)) => {
                    if let Some(r) = self.own(e.get_original_event()) {
                        out.push(r?);
                    }
                }
                Ok(None) | Err(eventstore::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(map::error(e, None)),
            }
        }
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        if read.limit == 0 {
            return Err(StoreError::InvalidInput(
                "read limit must be at least 1".into(),
            ));
        }
        let mut out = Vec::new();
        let mut cursor = read.after;
        loop {
            let options = ReadAllOptions::default()
                .forwards()
                .position(StreamPosition::Position(map::esdb_position(cursor)))
                .max_count(PAGE);
            let mut events = self
                .client
                .read_all(&options)
                .await
                .map_err(|e| map::error(e, None))?;
            let mut scanned = 0;
            while let Some(e) = events.next().await.map_err(|e| map::error(e, None))? {
                scanned += 1;
                let raw = e.get_original_event();
                let p = map::position(raw.position);
                if p <= cursor {
                    continue; // the read starts at `cursor` inclusive
                }
                cursor = p;
                let Some(r) = self.own(raw) else { continue };
                let r = r?;
                if read.filter.matches(&r) {
                    out.push(r);
                    if out.len() == read.limit {
                        return Ok(out);
                    }
                }
            }
            if scanned < PAGE {
                return Ok(out);
            }
        }
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        let last = self
            .read_stream(stream, ReadStream::backward().limit(1))
            .await?;
        Ok(last.first().map(|e| e.version))
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        let options = ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(PAGE);
        let mut events = self
            .client
            .read_all(&options)
            .await
            .map_err(|e| map::error(e, None))?;
        while let Some(e) = events.next().await.map_err(|e| map::error(e, None))? {
            let raw = e.get_original_event();
            if self.own(raw).is_some() {
                return Ok(Some(map::position(raw.position)));
            }
        }
        Ok(None)
    }

    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        // EventStoreDB has no index by event id: scan the stream, newest first.
        let mut from = None;
        loop {
            let mut read = ReadStream::backward().limit(PAGE);
            read.from = from;
            let page = self.read_stream(stream, read).await?;
            if let Some(found) = page.iter().find(|e| e.id == id) {
                return Ok(Some(found.clone()));
            }
            match page.last() {
                Some(e) if page.len() == PAGE && e.version.0 > 0 => {
                    from = Some(Version(e.version.0 - 1))
                }
                _ => return Ok(None),
            }
        }
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        Subscription::polling(
            self.clone(),
            after,
            filter,
            Some(self.wakeup.clone()),
            self.config,
        )
    }
}

/// Wake-up hints from a live `$all` subscription (system events excluded). Reading
/// stays with `read_all`; this only says "something was appended".
async fn wake_on_appends(client: Client, tx: watch::Sender<u64>) {
    loop {
        let options = SubscribeToAllOptions::default()
            .position(StreamPosition::End)
            .filter(SubscriptionFilter::on_event_type().exclude_system_events());
        let mut sub = client.subscribe_to_all(&options).await;
        loop {
            match sub.next().await {
                Ok(_) => tx.send_modify(|n| *n = n.wrapping_add(1)),
                Err(e) => {
                    tracing::debug!(error = %e, "EventStoreDB wake-up subscription dropped; polling covers it");
                    break;
                }
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
