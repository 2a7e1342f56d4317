-- Marks the commands $1 dispatched at $2, each only if still pending (a compare-and-set:
-- a command another worker marked, or its instance discarded, is left alone), and
-- returns the ids of those it marked.
UPDATE {schema}.outbox o
SET state = 'dispatched', attempts = o.attempts + 1, last_error = NULL, dispatched_at = $2, settled_at = $2
FROM unnest($1::uuid[]) AS m(command_id)
WHERE o.command_id = m.command_id AND o.state = 'pending'
RETURNING o.command_id
