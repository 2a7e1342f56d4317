-- Outbox rows settled (dispatched, failed, discarded) before $2 of instances ended and
-- unchanged since before $2, oldest first, at most $3; never a pending one. Instances
-- and rows locked as in prune_handled.sql.
DELETE FROM {schema}.outbox
WHERE seq IN (
    SELECT o.seq
    FROM {schema}.outbox o
    JOIN {schema}.instances i ON i.process = o.process AND i.instance_id = o.instance_id
    WHERE o.process = $1
      AND o.state <> 'pending'
      AND o.settled_at < $2
      AND i.status IN ('completed', 'failed')
      AND i.updated_at < $2
    ORDER BY o.settled_at
    LIMIT $3
    FOR UPDATE OF o SKIP LOCKED FOR SHARE OF i SKIP LOCKED)
