//! The process store's statements, loaded from the `.sql` files beside this module and
//! filled in once per store for its schema: the paths run for every event, dispatch and
//! deadline only look them up in the connection's statement cache (one round trip each,
//! nothing formatted per call).

use tessera_postgres::SchemaName;

use crate::sql::in_schema;

/// Statement texts for one schema.
pub(super) struct Sql {
    /// An instance's state, locked for the transaction.
    pub(super) lock_instance: String,
    /// Several instances, locked for the transaction in the order of their ids.
    pub(super) lock_instances: String,
    /// Whether an instance has handled a trigger.
    pub(super) handled: String,
    /// Records that an instance handled a trigger.
    pub(super) mark_handled: String,
    /// Discards an instance's pending commands.
    pub(super) discard_pending: String,
    /// Queues a command (once per command id).
    pub(super) enqueue: String,
    /// Cancels an instance's scheduled deadlines (all, or those of key `$3`).
    pub(super) cancel_deadlines: String,
    /// Schedules a deadline.
    pub(super) schedule: String,
    /// A new instance.
    pub(super) insert_instance: String,
    /// An instance's new state, if its version is still `$7`.
    pub(super) update_instance: String,
    /// Several instances with their state, locked in the order of their ids.
    pub(super) load_instances: String,
    /// Which of several (instance, trigger) pairs were handled.
    pub(super) handled_any: String,
    /// Records that several instances handled their triggers.
    pub(super) mark_handled_all: String,
    /// Discards the pending commands of several instances.
    pub(super) discard_pending_all: String,
    /// Queues several commands, in order.
    pub(super) enqueue_all: String,
    /// Cancels scheduled deadlines of several instances by key (or all).
    pub(super) cancel_deadlines_all: String,
    /// Schedules several deadlines.
    pub(super) schedule_all: String,
    /// Several new instances.
    pub(super) insert_instances: String,
    /// Several instances' new states, each a compare-and-set on its version.
    pub(super) update_instances: String,
    /// Scheduled deadlines due by `$2`, oldest first.
    pub(super) due_deadlines: String,
    /// Settles a pending command's outbox row.
    pub(super) settle_outbox: String,
    /// Marks pending commands dispatched, returning those it marked.
    pub(super) mark_dispatched: String,
    /// Marks pending forward commands dispatched, skipping rows another transaction
    /// holds, returning those it marked.
    pub(super) mark_dispatched_free: String,
    /// Which of several commands are still pending.
    pub(super) still_pending: String,
    /// Claims a scheduled deadline (compare-and-set), returning its timeout.
    pub(super) claim_deadline: String,
    /// Pending commands, oldest first.
    pub(super) pending: String,
    /// How many commands are pending, how many of them retried, the oldest's age.
    pub(super) backlog: String,
    pub(super) waiting: String,
    /// One instance.
    pub(super) instance: String,
    /// Instances, all or of status `$2`.
    pub(super) instances: String,
    /// Every deadline of the process.
    pub(super) deadlines: String,
    /// A page of instances, by id in byte order.
    pub(super) instance_page: String,
    /// A page of the instances of status `$2`, by id in byte order.
    pub(super) instance_page_of_status: String,
    /// Every outbox row of one instance, in issue order.
    pub(super) instance_commands: String,
    /// Every deadline of one instance, by due time.
    pub(super) instance_deadlines: String,
    /// The triggers one instance handled, oldest first.
    pub(super) instance_handled: String,
    /// A page of the pending commands after a `seq`, in order (`read::due` picks each
    /// instance's oldest).
    pub(super) due: String,
    /// Handled records of instances ended before `$2`, at most `$3`.
    pub(super) prune_handled: String,
    /// Settled outbox rows of instances ended before `$2`, at most `$3`.
    pub(super) prune_outbox: String,
    /// Fired or cancelled deadlines of instances ended before `$2`, at most `$3`.
    pub(super) prune_deadlines: String,
}

impl Sql {
    /// The statements for `schema`.
    pub(super) fn new(schema: &SchemaName) -> Self {
        Self {
            lock_instance: in_schema(include_str!("sql/lock_instance.sql"), schema),
            lock_instances: in_schema(include_str!("sql/lock_instances.sql"), schema),
            handled: in_schema(include_str!("sql/handled.sql"), schema),
            mark_handled: in_schema(include_str!("sql/mark_handled.sql"), schema),
            discard_pending: in_schema(include_str!("sql/discard_pending.sql"), schema),
            enqueue: in_schema(include_str!("sql/enqueue.sql"), schema),
            cancel_deadlines: in_schema(include_str!("sql/cancel_deadlines.sql"), schema),
            schedule: in_schema(include_str!("sql/schedule.sql"), schema),
            insert_instance: in_schema(include_str!("sql/insert_instance.sql"), schema),
            update_instance: in_schema(include_str!("sql/update_instance.sql"), schema),
            load_instances: in_schema(include_str!("sql/load_instances.sql"), schema),
            handled_any: in_schema(include_str!("sql/handled_any.sql"), schema),
            mark_handled_all: in_schema(include_str!("sql/mark_handled_all.sql"), schema),
            discard_pending_all: in_schema(include_str!("sql/discard_pending_all.sql"), schema),
            enqueue_all: in_schema(include_str!("sql/enqueue_all.sql"), schema),
            cancel_deadlines_all: in_schema(include_str!("sql/cancel_deadlines_all.sql"), schema),
            schedule_all: in_schema(include_str!("sql/schedule_all.sql"), schema),
            insert_instances: in_schema(include_str!("sql/insert_instances.sql"), schema),
            update_instances: in_schema(include_str!("sql/update_instances.sql"), schema),
            due_deadlines: in_schema(include_str!("sql/due_deadlines.sql"), schema),
            settle_outbox: in_schema(include_str!("sql/settle_outbox.sql"), schema),
            mark_dispatched: in_schema(include_str!("sql/mark_dispatched.sql"), schema),
            mark_dispatched_free: in_schema(include_str!("sql/mark_dispatched_free.sql"), schema),
            still_pending: in_schema(include_str!("sql/still_pending.sql"), schema),
            claim_deadline: in_schema(include_str!("sql/claim_deadline.sql"), schema),
            pending: in_schema(include_str!("sql/pending.sql"), schema),
            backlog: in_schema(include_str!("sql/backlog.sql"), schema),
            waiting: in_schema(include_str!("sql/waiting.sql"), schema),
            instance: in_schema(include_str!("sql/instance.sql"), schema),
            instances: in_schema(include_str!("sql/instances.sql"), schema),
            deadlines: in_schema(include_str!("sql/deadlines.sql"), schema),
            instance_page: in_schema(include_str!("sql/instance_page.sql"), schema),
            instance_page_of_status: in_schema(
                include_str!("sql/instance_page_of_status.sql"),
                schema,
            ),
            instance_commands: in_schema(include_str!("sql/instance_commands.sql"), schema),
            instance_deadlines: in_schema(include_str!("sql/instance_deadlines.sql"), schema),
            instance_handled: in_schema(include_str!("sql/instance_handled.sql"), schema),
            due: in_schema(include_str!("sql/due.sql"), schema),
            prune_handled: in_schema(include_str!("sql/prune_handled.sql"), schema),
            prune_outbox: in_schema(include_str!("sql/prune_outbox.sql"), schema),
            prune_deadlines: in_schema(include_str!("sql/prune_deadlines.sql"), schema),
        }
    }
}
