//! One command's run: take the state from the cache or load it (finding an earlier run
//! of a keyed command on the way), decide, append; after a conflict, again.

use super::append::{self, Attempts, Next};
use super::cache::Cached;
use super::replay::{self, FirstRun, KeyScan, KeyedRuns};
use crate::{
    Aggregate, AppendOutcome, CommandError, CommandHandler, CommandOptions, CommandOutcome,
    EventStore, ExpectedVersion, Landing, Loaded, StreamId,
};

/// Where an attempt starts: the state to decide on, whether it came from the cache, the
/// keyed runs remembered with it, and the first run of this command's key, if any.
struct Start<A> {
    loaded: Loaded<A>,
    from_cache: bool,
    remembered: KeyedRuns,
    first: Option<FirstRun>,
    /// The key's earlier run was not looked for: an append finds it (the store refuses
    /// its ids), so only an answer that appends nothing must look first.
    unchecked: bool,
    /// The state is the empty one, assumed without a read ([`Aggregate::starts_stream`]).
    assumed: bool,
}

/// A command on its way through `handler`.
pub(super) struct Run<'h, A: Aggregate, S> {
    handler: &'h CommandHandler<A, S>,
    stream: StreamId,
    options: CommandOptions,
}

impl<'h, A: Aggregate, S: EventStore> Run<'h, A, S> {
    pub(super) fn new(
        handler: &'h CommandHandler<A, S>,
        stream: StreamId,
        options: CommandOptions,
    ) -> Self {
        Self {
            handler,
            stream,
            options,
        }
    }

    /// Runs `command` to its outcome.
    pub(super) async fn handle(
        self,
        command: &A::Command,
    ) -> Result<CommandOutcome, CommandError<A::Error>> {
        let (h, stream) = (self.handler, &self.stream);
        let key = self.options.idempotency_key.as_deref();
        let mut attempts = Attempts::new();
        // The first attempt of a command that usually starts its stream assumes there is
        // none (unless the cache says otherwise); any later one loads.
        let mut assume_new = A::starts_stream(command);
        loop {
            let Start {
                loaded,
                from_cache,
                remembered,
                first,
                unchecked,
                assumed,
            } = self
                .begin(
                    key,
                    attempts.found_taken_ids(),
                    std::mem::take(&mut assume_new),
                )
                .await?;
            if let Some((key, first)) = key.zip(first) {
                h.keep(stream, loaded, remembered.with(key, first.clone()));
                return first.answer(stream.clone(), self.options.fingerprint);
            }
            let decision = loaded.state.decide(command, &h.services);
            // A refusal or a no-op writes nothing, so no expected version would catch a
            // cached state another writer made stale: check the stream's version before
            // answering from it (one cheap read, only on these paths).
            let answers_without_append = decision.as_ref().map_or(true, Vec::is_empty);
            if assumed && answers_without_append {
                tracing::debug!("refused or no-op on the assumed empty state; loading");
                continue;
            }
            if from_cache
                && answers_without_append
                && h.store.stream_version(stream).await? != loaded.version
            {
                tracing::debug!("cached state was stale; reloading before answering");
                continue;
            }
            if let Some(key) = key.filter(|_| unchecked && answers_without_append) {
                if let Some(first) = replay::find(&h.store, stream, key).await? {
                    h.keep(stream, loaded, remembered.with(key, first.clone()));
                    return first.answer(stream.clone(), self.options.fingerprint);
                }
            }
            let events = match decision {
                Ok(events) if !events.is_empty() => events,
                Ok(_) => {
                    let version = loaded.version;
                    h.keep(stream, loaded, remembered);
                    return Ok(CommandOutcome {
                        stream_id: stream.clone(),
                        version,
                        position: None,
                        events: 0,
                        replayed: false,
                    });
                }
                Err(rejected) => {
                    h.keep(stream, loaded, remembered);
                    return Err(CommandError::Rejected(rejected));
                }
            };
            let (fingerprint, metadata) = (self.options.fingerprint, &self.options.metadata);
            let new_events = append::encode(stream, &events, key, fingerprint, metadata)?;
            let expected = ExpectedVersion::from_current(loaded.version);
            let written =
                append::append_retrying_unknown(&h.store, &h.retry, stream, expected, new_events)
                    .await;
            match written {
                Ok((written, landing)) => {
                    if let Some(key) = key.filter(|_| unchecked && landing != Landing::Written) {
                        // Found stored, not written (or the store cannot tell): an
                        // earlier run of the key, perhaps another process's, perhaps
                        // for another request. Its outcome answers, as it would have
                        // had it been looked for first; the state decided on was
                        // stale, so it is not kept.
                        if let Some(first) = replay::find(&h.store, stream, key).await? {
                            return first.answer(stream.clone(), self.options.fingerprint);
                        }
                    }
                    return Ok(self.wrote(loaded, remembered, &events, written).await);
                }
                Err(e) => {
                    match attempts.after(e, stream, key.is_some(), from_cache || assumed, &h.retry)
                    {
                        Next::Reload(wait) if wait.is_zero() => h.metrics.retried(),
                        Next::Reload(wait) => {
                            h.metrics.retried();
                            tokio::time::sleep(wait).await;
                        }
                        Next::Fail(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// The state to decide on and the first run of `key` if it already landed.
    ///
    /// The run is looked for after the load, not before: a run of the same command
    /// landing between the two is then either found or makes the append's expected
    /// version stale, where the store's idempotency rules answer it. Looked for before
    /// the load, it could land unseen and this run append the same ids again after it (a
    /// store that checks ids only against a stale expected version takes them).
    ///
    /// Unless `look` (an append found the key's ids taken), a store that refuses taken
    /// ids is not asked: the append finds the run (see [`Start::unchecked`]).
    async fn begin(
        &self,
        key: Option<&str>,
        look: bool,
        assume_new: bool,
    ) -> Result<Start<A>, CommandError<A::Error>> {
        let (h, stream) = (self.handler, &self.stream);
        let skip = !look && h.store.rejects_taken_ids();
        let cached = h.cache.as_ref().map(|c| c.take(stream));
        if let Some(hit) = cached.as_ref().map(Option::is_some) {
            h.metrics.cache(hit);
        }
        if assume_new && !matches!(cached, Some(Some(_))) {
            // Appended expecting no stream: an existing one refuses it, or holds this
            // key's run exactly there (a repeat, answered from the stored run).
            return Ok(Start {
                loaded: Loaded {
                    state: A::default(),
                    version: None,
                    events_since_snapshot: 0,
                },
                from_cache: false,
                remembered: KeyedRuns::default(),
                first: None,
                unchecked: key.is_some(),
                assumed: true,
            });
        }
        if let Some(Cached { loaded, runs }) = cached.flatten() {
            let mut unchecked = false;
            let first = match key {
                Some(key) => match runs.of(key) {
                    Some(remembered) => Some(remembered),
                    // The append refuses the key's ids if a run landed (a
                    // `DuplicateEventId`, then a reload that finds it): one read fewer
                    // on the path almost every command takes.
                    None if skip => {
                        unchecked = true;
                        None
                    }
                    None => replay::find(&h.store, stream, key).await?,
                },
                None => None,
            };
            return Ok(Start {
                loaded,
                from_cache: true,
                remembered: runs,
                first,
                unchecked,
                assumed: false,
            });
        }
        let mut scan = key.map(|key| KeyScan::new(stream, key));
        let (loaded, from_start) = h.load_stream(stream, scan.as_mut()).await?;
        let mut unchecked = false;
        let first = match (scan.and_then(KeyScan::found), key) {
            (Some(run), _) => Some(run),
            // The load read every event and none was the key's: nothing to look up.
            (None, Some(_)) if !from_start && skip => {
                unchecked = true;
                None
            }
            (None, Some(key)) if !from_start => replay::find(&h.store, stream, key).await?,
            _ => None,
        };
        Ok(Start {
            loaded,
            from_cache: false,
            remembered: KeyedRuns::default(),
            first,
            unchecked,
            assumed: false,
        })
    }

    /// Folds the appended `events` into `loaded`, takes a snapshot if one is due, keeps
    /// the state in the cache and says what was written.
    async fn wrote(
        self,
        mut loaded: Loaded<A>,
        remembered: KeyedRuns,
        events: &[A::Event],
        written: AppendOutcome,
    ) -> CommandOutcome {
        let (h, stream) = (self.handler, self.stream);
        let runs = match self.options.idempotency_key.as_deref() {
            Some(key) => {
                let run = FirstRun::written(self.options.fingerprint, &written, events.len());
                remembered.with(key, run)
            }
            None => remembered,
        };
        for event in events {
            loaded.state.apply(event);
        }
        loaded.events_since_snapshot += events.len() as u64;
        loaded.version = Some(written.version);
        if let Some(snapshots) = &h.snapshots {
            let since = loaded.events_since_snapshot;
            if snapshots
                .save_if_due(&stream, &loaded.state, written.version, since)
                .await
            {
                loaded.events_since_snapshot = 0;
            }
        }
        h.keep(&stream, loaded, runs);
        CommandOutcome {
            stream_id: stream,
            version: Some(written.version),
            position: Some(written.position),
            events: events.len(),
            replayed: false,
        }
    }
}
