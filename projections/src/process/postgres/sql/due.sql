-- A page of the pending commands after seq $2, oldest first: the worker's scan for the
-- oldest pending command of each instance (`read::due` picks them).
SELECT o.seq, o.instance_id, o.issued, o.attempts, o.not_before, o.last_error
FROM {schema}.outbox o
WHERE o.process = $1
  AND o.state = 'pending'
  AND o.seq > $2
ORDER BY o.seq
LIMIT $3
