//! The in-memory process store: instances, handled inputs, outbox, deadlines and the
//! checkpoint under one lock.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tessera_core::process::{Input, Instance, InstanceId, Issued, ProcessManager, Status, Trigger};
use tessera_core::trace::TraceContext;
use tessera_core::{BoxError, EventFilter, Position, RecordedEvent, Upcasters};
use tokio::sync::Notify;

use super::record::page_limit;
use super::store::route;
use super::{
    Backlog, Clock, CommandState, Deadline, Due, InstanceRecord, OutboxEntry, ProcessStore, Pruned,
};
use crate::checkpoint::expect_at;
use crate::{ApplyError, Subscriber};

mod deadlines;
mod outbox;
mod tables;

use tables::Tables;

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
                if e.position <= tables.checkpoint {
                    // Applied already: a redelivery (see `Subscriber::apply`).
                    continue;
                }
                match route(self.process.as_ref(), &self.upcasters, e) {
                    Err(error) => return Err(ApplyError::Failed { applied, error }),
                    Ok(Some((id, start, event))) => {
                        let input = Input::Event(&event);
                        let trace = TraceContext::of(&e.metadata).map(|t| (t, false));
                        let trigger = (Trigger::event(e.id), trace.as_ref());
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
        Ok(self.lock().outbox.pending(limit))
    }

    async fn backlog(&self) -> Result<Backlog, BoxError> {
        let now = self.clock.now();
        Ok(self.lock().backlog(now))
    }

    async fn waiting(&self) -> Result<u64, BoxError> {
        Ok(self.lock().outbox.waiting())
    }

    async fn due(
        &self,
        now: SystemTime,
        limit: usize,
        busy: &[InstanceId],
    ) -> Result<Due<P::Command>, BoxError> {
        Ok(self.lock().outbox.due(now, limit, busy))
    }

    async fn mark_dispatched(&self, issued: &Issued<P::Command>) -> Result<(), BoxError> {
        self.lock().dispatched(issued, self.clock.now());
        Ok(())
    }

    async fn mark_all_dispatched(&self, issued: &[Issued<P::Command>]) -> Result<(), BoxError> {
        let now = self.clock.now();
        let mut tables = self.lock();
        for one in issued {
            tables.dispatched(one, now);
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
        let Some(entry) = tables.outbox.pending_mut(issued.id) else {
            return Ok(());
        };
        entry.attempts += 1;
        entry.last_error = Some(error.to_owned());
        if let Some(at) = retry_at {
            entry.not_before = at;
            return Ok(());
        }
        let now = self.clock.now();
        tables.outbox.settle(issued.id, CommandState::Failed, now);
        if let Some(mut instance) = tables.instance(&issued.instance).cloned() {
            let effects = instance.failed(&self.process, issued, error);
            tables.record(instance, effects, now);
        }
        drop(tables);
        self.wake.notify_one();
        Ok(())
    }

    async fn fire_due(&self, now: SystemTime, limit: usize) -> Result<usize, BoxError> {
        let mut tables = self.lock();
        // `now` picks what is due; what the timeouts cause is recorded at the clock's time.
        let recorded_at = self.clock.now();
        let mut fired = 0;
        for id in tables.deadlines.due(now, limit) {
            // Fired before its timeout is handled, under the same lock: exactly once.
            let Some((instance, (timeout, trace))) = tables.deadlines.fire(id, recorded_at) else {
                continue;
            };
            let trace = trace.map(|t| (t, true));
            let (input, trigger) = (Input::Timeout(&timeout), (Trigger(id), trace.as_ref()));
            tables.react(
                &self.process,
                (&instance, false),
                input,
                trigger,
                recorded_at,
            );
            fired += 1;
        }
        drop(tables);
        if fired > 0 {
            self.wake.notify_one();
        }
        Ok(fired)
    }

    async fn prune(&self, before: SystemTime, limit: usize) -> Result<Pruned, BoxError> {
        Ok(self.lock().prune(before, limit))
    }

    async fn instance(&self, id: &InstanceId) -> Result<Option<Instance<P>>, BoxError> {
        Ok(self.lock().instance(id).cloned())
    }

    async fn instances(&self, status: Option<Status>) -> Result<Vec<Instance<P>>, BoxError> {
        Ok(self.lock().page(status, None, usize::MAX))
    }

    async fn deadlines(&self) -> Result<Vec<Deadline>, BoxError> {
        Ok(self.lock().deadlines.list())
    }

    async fn instance_page(
        &self,
        status: Option<Status>,
        after: Option<&InstanceId>,
        limit: usize,
    ) -> Result<Vec<Instance<P>>, BoxError> {
        let limit = page_limit(limit)?;
        Ok(self.lock().page(status, after, limit))
    }

    async fn instance_record(
        &self,
        id: &InstanceId,
    ) -> Result<Option<InstanceRecord<P::Command>>, BoxError> {
        Ok(self.lock().record_of(id))
    }
}
