-- The oldest pending command of each instance not in $3, if due at $2, oldest first.
SELECT o.issued, o.attempts, o.not_before, o.last_error
FROM {schema}.outbox o
WHERE o.process = $1
  AND o.state = 'pending'
  AND o.not_before <= $2
  AND o.instance_id <> ALL($3::text[])
  AND NOT EXISTS (
      SELECT 1 FROM {schema}.outbox e
      WHERE e.process = o.process
        AND e.instance_id = o.instance_id
        AND e.state = 'pending'
        AND e.seq < o.seq)
ORDER BY o.seq
LIMIT $4
