//! The process store's statements, written once per store for its schema: the paths
//! run for every event, dispatch and deadline only look them up in the connection's
//! statement cache (one round trip each, nothing formatted per call).

/// Statement texts for one schema.
pub(super) struct Sql {
    /// An instance's state, locked for the transaction.
    pub(super) lock_instance: String,
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
    /// The process's checkpoint, locked.
    pub(super) lock_checkpoint: String,
    /// Moves the process's checkpoint.
    pub(super) write_checkpoint: String,
    /// The process's checkpoint.
    pub(super) read_checkpoint: String,
    /// Scheduled deadlines due by `$2`, oldest first.
    pub(super) due_deadlines: String,
    /// Settles a pending command's outbox row.
    pub(super) settle_outbox: String,
    /// Claims a scheduled deadline (compare-and-set), returning its timeout.
    pub(super) claim_deadline: String,
}

impl Sql {
    /// The statements for `schema` (already quoted).
    pub(super) fn new(schema: &str) -> Self {
        let s = schema;
        Self {
            lock_instance: format!("SELECT data FROM {s}.instances WHERE process = $1 AND instance_id = $2 FOR UPDATE"),
            handled: format!("SELECT 1 FROM {s}.handled WHERE process = $1 AND instance_id = $2 AND trigger_id = $3"),
            mark_handled: format!("INSERT INTO {s}.handled (process, instance_id, trigger_id) VALUES ($1, $2, $3)"),
            discard_pending: format!("UPDATE {s}.outbox SET state = 'discarded' WHERE process = $1 AND instance_id = $2 AND state = 'pending'"),
            enqueue: format!("INSERT INTO {s}.outbox (process, command_id, instance_id, issued, not_before) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (command_id) DO NOTHING"),
            cancel_deadlines: format!("UPDATE {s}.deadlines SET state = 'cancelled' WHERE process = $1 AND instance_id = $2 AND state = 'scheduled' AND ($3::text IS NULL OR key = $3)"),
            schedule: format!("INSERT INTO {s}.deadlines (id, process, instance_id, key, due_at, timeout) VALUES ($1, $2, $3, $4, $5, $6)"),
            insert_instance: format!("INSERT INTO {s}.instances (process, instance_id, version, status, reason, data) VALUES ($1, $2, $3, $4, $5, $6)"),
            update_instance: format!("UPDATE {s}.instances SET version = $3, status = $4, reason = $5, data = $6, updated_at = now() WHERE process = $1 AND instance_id = $2 AND version = $7"),
            lock_checkpoint: format!("SELECT commit_pos, prepare_pos FROM {s}.checkpoints WHERE process = $1 FOR UPDATE"),
            write_checkpoint: format!("UPDATE {s}.checkpoints SET commit_pos = $2, prepare_pos = $3, updated_at = now() WHERE process = $1"),
            read_checkpoint: format!("SELECT commit_pos, prepare_pos FROM {s}.checkpoints WHERE process = $1"),
            due_deadlines: format!("SELECT id, instance_id FROM {s}.deadlines WHERE process = $1 AND state = 'scheduled' AND due_at <= $2 ORDER BY due_at LIMIT $3"),
            settle_outbox: format!("UPDATE {s}.outbox SET state = $2, attempts = attempts + 1, last_error = $3, not_before = COALESCE($4, not_before), dispatched_at = CASE WHEN $2 = 'dispatched' THEN now() END WHERE command_id = $1 AND state = 'pending'"),
            claim_deadline: format!("UPDATE {s}.deadlines SET state = 'fired', fired_at = now() WHERE id = $1 AND state = 'scheduled' RETURNING timeout"),
        }
    }
}
