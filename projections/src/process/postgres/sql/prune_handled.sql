-- Handled records from before $2 of instances ended and unchanged since before $2, oldest
-- first, at most $3. Their instances are share-locked and those being changed skipped, so
-- no instance comes back to life while its records go; rows another prune holds are
-- skipped too, so concurrent prunes never wait on each other.
DELETE FROM {schema}.handled
WHERE (process, instance_id, trigger_id) IN (
    SELECT h.process, h.instance_id, h.trigger_id
    FROM {schema}.handled h
    JOIN {schema}.instances i ON i.process = h.process AND i.instance_id = h.instance_id
    WHERE h.process = $1
      AND h.handled_at < $2
      AND i.status IN ('completed', 'failed')
      AND i.updated_at < $2
    ORDER BY h.handled_at
    LIMIT $3
    FOR UPDATE OF h SKIP LOCKED FOR SHARE OF i SKIP LOCKED)
