//! The in-memory process store: instances, handled inputs, outbox, deadlines and the
//! checkpoint under one lock.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tessera_core::process::{Input, Instance, InstanceId, Issued, ProcessManager, Status, Trigger};
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent, Upcasters};
use tokio::sync::Notify;

use super::store::route;
use super::{Clock, Deadline, DeadlineState, OutboxEntry, ProcessStore};
use crate::checkpoint::expect_at;
use crate::{ApplyError, Subscriber};

mod tables;

use tables::{EntryState, Tables};

/// A process store held in memory, for tests and the embedded mode. Clones share it, so a
/// runner and worker can be stopped and new ones started over the same contents (a
/// restart of the process, not of the machine).
pub struct MemoryProcess<P: ProcessManager> {
    process: Arc<P>,
    tables: Arc<Mutex<Tables<P>>>,
    clock: Clock,
    wake: Arc<Notify>,
    upcasters: Arc<Upcasters>,
}

impl<P: ProcessManager> Clone for MemoryProcess<P> {
    fn clone(&self) -> Self {
        Self {
            process: Arc::clone(&self.process),
            tables: Arc::clone(&self.tables),
            clock: self.clock,
            wake: Arc::clone(&self.wake),
            upcasters: Arc::clone(&self.upcasters),
        }
    }
}

impl<P: ProcessManager> MemoryProcess<P> {
    /// An empty store for `process`. Call it inside a tokio runtime (for its clock).
    pub fn new(process: P) -> Self {
        Self {
            process: Arc::new(process),
            tables: Arc::new(Mutex::new(Tables::default())),
            clock: Clock::new(),
            wake: Arc::new(Notify::new()),
            upcasters: Arc::new(Upcasters::new()),
        }
    }

    /// Decodes events with these upcasters.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = Arc::new(upcasters);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Tables<P>> {
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<P: ProcessManager> Subscriber for MemoryProcess<P> {
    fn name(&self) -> &str {
        P::NAME
    }

    fn filter(&self) -> EventFilter {
        self.process.filter()
    }

    async fn checkpoint(&self) -> Result<Position, BoxError> {
        Ok(self.lock().checkpoint)
    }

    async fn apply(&self, from: Position, batch: &[RecordedEvent]) -> Result<(), ApplyError> {
        {
            let mut tables = self.lock();
            expect_at(tables.checkpoint, from)?;
            let now = self.clock.now();
            for (applied, e) in batch.iter().enumerate() {
                match route(self.process.as_ref(), &self.upcasters, e) {
                    Err(error) => return Err(ApplyError::Failed { applied, error }),
                    Ok(Some((id, start, event))) => {
                        let input = Input::Event(&event);
                        let trigger = Trigger::event(e.id);
                        tables.react(&self.process, (&id, start), input, trigger, now);
                    }
                    Ok(None) => {}
                }
                tables.checkpoint = e.position;
            }
        }
        self.wake.notify_one();
        Ok(())
    }
}

impl<P: ProcessManager> ProcessStore<P> for MemoryProcess<P> {
    fn clock(&self) -> Clock {
        self.clock
    }

    fn wakeup(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    async fn pending(&self, limit: usize) -> Result<Vec<OutboxEntry<P::Command>>, BoxError> {
        let tables = self.lock();
        let pending = tables
            .outbox
            .values()
            .filter(|e| e.state == EntryState::Pending);
        Ok(pending.take(limit).map(|e| e.view.clone()).collect())
    }

    async fn due(
        &self,
        now: SystemTime,
        limit: usize,
        busy: &[InstanceId],
    ) -> Result<Vec<OutboxEntry<P::Command>>, BoxError> {
        Ok(self.lock().due(now, limit, busy))
    }

    async fn mark_dispatched(&self, issued: &Issued<P::Command>) -> Result<(), BoxError> {
        let mut tables = self.lock();
        let Some(entry) = tables.entry_mut(issued.id) else {
            return Ok(());
        };
        if entry.state != EntryState::Pending {
            return Ok(());
        }
        entry.state = EntryState::Dispatched;
        entry.view.attempts += 1;
        if let Some(mut instance) = tables.instances.get(&issued.instance).cloned() {
            let effects = instance.dispatched(issued);
            tables.record(instance, effects, self.clock.now());
        }
        Ok(())
    }

    async fn mark_failed(
        &self,
        issued: &Issued<P::Command>,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<(), BoxError> {
        let mut tables = self.lock();
        let Some(entry) = tables.entry_mut(issued.id) else {
            return Ok(());
        };
        if entry.state != EntryState::Pending {
            return Ok(());
        }
        entry.view.attempts += 1;
        entry.view.last_error = Some(error.to_owned());
        if let Some(at) = retry_at {
            entry.view.not_before = at;
            return Ok(());
        }
        entry.state = EntryState::Failed;
        if let Some(mut instance) = tables.instances.get(&issued.instance).cloned() {
            let effects = instance.failed(&self.process, issued, error);
            tables.record(instance, effects, self.clock.now());
        }
        drop(tables);
        self.wake.notify_one();
        Ok(())
    }

    async fn fire_due(&self, now: SystemTime, limit: usize) -> Result<usize, BoxError> {
        let mut tables = self.lock();
        let mut due: Vec<(SystemTime, usize)> = tables
            .deadlines
            .iter()
            .enumerate()
            .filter(|(_, d)| d.view.state == DeadlineState::Scheduled && d.view.due_at <= now)
            .map(|(i, d)| (d.view.due_at, i))
            .collect();
        due.sort();
        due.truncate(limit);
        // `now` picks what is due; what the timeouts cause is recorded at the clock's time.
        let recorded_at = self.clock.now();
        for &(_, i) in &due {
            // Fired before its timeout is handled, under the same lock: exactly once.
            let d = &mut tables.deadlines[i];
            d.view.state = DeadlineState::Fired;
            let (id, trigger, timeout) = (
                d.view.instance.clone(),
                Trigger(d.view.id),
                d.timeout.clone(),
            );
            tables.react(
                &self.process,
                (&id, false),
                Input::Timeout(&timeout),
                trigger,
                recorded_at,
            );
        }
        drop(tables);
        if !due.is_empty() {
            self.wake.notify_one();
        }
        Ok(due.len())
    }

    async fn instance(&self, id: &InstanceId) -> Result<Option<Instance<P>>, BoxError> {
        Ok(self.lock().instances.get(id).cloned())
    }

    async fn instances(&self, status: Option<Status>) -> Result<Vec<Instance<P>>, BoxError> {
        let tables = self.lock();
        let all = tables.instances.values();
        Ok(all
            .filter(|i| status.is_none_or(|s| i.status == s))
            .cloned()
            .collect())
    }

    async fn deadlines(&self) -> Result<Vec<Deadline>, BoxError> {
        let mut all: Vec<Deadline> = self
            .lock()
            .deadlines
            .iter()
            .map(|d| d.view.clone())
            .collect();
        all.sort_by_key(|d| d.due_at);
        Ok(all)
    }
}
