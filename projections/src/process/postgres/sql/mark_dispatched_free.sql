-- Marks the forward commands $1 dispatched at $2, each only if still pending, without
-- waiting for a row lock: a row another transaction holds (a runner discarding its
-- instance's commands) is skipped, and the caller marks it alone afterwards. Returns
-- the ids it marked. Takes no instance lock: a forward command's mark changes only its
-- outbox row, so it need not wait for a runner's batch over the same instances.
WITH m AS (
    SELECT o.seq
    FROM {schema}.outbox o
    WHERE o.command_id = ANY($1::uuid[]) AND o.state = 'pending'
    FOR UPDATE SKIP LOCKED
)
UPDATE {schema}.outbox o
SET state = 'dispatched', attempts = o.attempts + 1, last_error = NULL, dispatched_at = $2, settled_at = $2
FROM m
WHERE o.seq = m.seq
RETURNING o.command_id
