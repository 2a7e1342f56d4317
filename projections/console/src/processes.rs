//! A process manager's store behind one object type, its instances as JSON.

use std::marker::PhantomData;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{json, Value};
use tessera_core::process::{CommandKind, Instance, InstanceId, ProcessManager, Status};
use tessera_core::BoxError;
use tessera_projections::process::{Backlog, InstanceRecord, ProcessStore};

use crate::operate::millis;
use crate::MAX_PAGE;

/// What the console reads from a process store.
#[async_trait]
pub(crate) trait Processes: Send + Sync {
    fn name(&self) -> &'static str;
    async fn backlog(&self) -> Result<Backlog, BoxError>;
    async fn page(
        &self,
        status: Option<Status>,
        after: Option<InstanceId>,
        limit: usize,
    ) -> Result<Vec<Value>, BoxError>;
    async fn detail(&self, id: InstanceId) -> Result<Option<Value>, BoxError>;
}

pub(crate) struct Viewed<P, S> {
    store: S,
    process: PhantomData<fn() -> P>,
}

impl<P, S> Viewed<P, S> {
    pub(crate) fn new(store: S) -> Self {
        Self {
            store,
            process: PhantomData,
        }
    }
}

pub(crate) fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, millis)
}

fn summary<P: ProcessManager>(i: &Instance<P>) -> Value {
    json!({
        "id": i.id.as_str(),
        "status": i.status.as_str(),
        "reason": i.reason,
        "version": i.version,
        "steps": i.steps.len(),
    })
}

#[async_trait]
impl<P, S> Processes for Viewed<P, S>
where
    P: ProcessManager,
    S: ProcessStore<P> + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        P::NAME
    }

    async fn backlog(&self) -> Result<Backlog, BoxError> {
        self.store.backlog().await
    }

    async fn page(
        &self,
        status: Option<Status>,
        after: Option<InstanceId>,
        limit: usize,
    ) -> Result<Vec<Value>, BoxError> {
        let page = self
            .store
            .instance_page(status, after.as_ref(), limit)
            .await?;
        Ok(page.iter().map(summary).collect())
    }

    async fn detail(&self, id: InstanceId) -> Result<Option<Value>, BoxError> {
        let Some(instance) = self.store.instance(&id).await? else {
            return Ok(None);
        };
        // A store that keeps no records (or fails to read them) still shows the
        // instance, saying why the lists are missing.
        let (record, records_error) = match self.store.instance_record(&id).await {
            Ok(record) => (record, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut record = record.unwrap_or(InstanceRecord {
            commands: Vec::new(),
            deadlines: Vec::new(),
            handled: Vec::new(),
        });
        // A long-lived instance's lists are cut to a page each.
        let truncated = record.commands.len() > MAX_PAGE
            || record.deadlines.len() > MAX_PAGE
            || record.handled.len() > MAX_PAGE;
        record.commands.truncate(MAX_PAGE);
        record.deadlines.truncate(MAX_PAGE);
        record.handled.truncate(MAX_PAGE);
        let steps: Vec<Value> = instance
            .steps
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "state": serde_json::to_value(&s.state).unwrap_or(Value::Null),
                    "compensation": serde_json::to_value(&s.compensation).unwrap_or(Value::Null),
                })
            })
            .collect();
        let commands: Vec<Value> = record
            .commands
            .iter()
            .map(|c| {
                let issued = &c.entry.issued;
                json!({
                    "id": issued.id.0,
                    "state": c.state.as_str(),
                    "kind": match issued.kind {
                        CommandKind::Forward => "forward".to_owned(),
                        CommandKind::Compensation { step } => format!("compensation of step {step}"),
                    },
                    "command": serde_json::to_value(&issued.command).unwrap_or(Value::Null),
                    "attempts": c.entry.attempts,
                    "not_before_ms": ms(c.entry.not_before),
                    "last_error": c.entry.last_error,
                })
            })
            .collect();
        let deadlines: Vec<Value> = record
            .deadlines
            .iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "key": d.key,
                    "due_at_ms": ms(d.due_at),
                    "state": d.state.as_str(),
                })
            })
            .collect();
        let handled: Vec<Value> = record
            .handled
            .iter()
            .map(|h| json!({ "trigger_id": h.trigger_id, "handled_at_ms": ms(h.handled_at) }))
            .collect();
        Ok(Some(json!({
            "id": instance.id.as_str(),
            "process": P::NAME,
            "status": instance.status.as_str(),
            "reason": instance.reason,
            "version": instance.version,
            "state": serde_json::to_value(&instance.state).unwrap_or(Value::Null),
            "steps": steps,
            "commands": commands,
            "deadlines": deadlines,
            "handled": handled,
            "records_error": records_error,
            "truncated": truncated,
        })))
    }
}
