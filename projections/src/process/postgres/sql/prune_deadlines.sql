-- Deadlines fired or cancelled before $2 of instances ended and unchanged since before
-- $2, oldest first, at most $3; never a scheduled one. Instances and rows locked as in
-- prune_handled.sql.
DELETE FROM {schema}.deadlines
WHERE id IN (
    SELECT d.id
    FROM {schema}.deadlines d
    JOIN {schema}.instances i ON i.process = d.process AND i.instance_id = d.instance_id
    WHERE d.process = $1
      AND d.state <> 'scheduled'
      AND d.settled_at < $2
      AND i.status IN ('completed', 'failed')
      AND i.updated_at < $2
    ORDER BY d.settled_at
    LIMIT $3
    FOR UPDATE OF d SKIP LOCKED FOR SHARE OF i SKIP LOCKED)
