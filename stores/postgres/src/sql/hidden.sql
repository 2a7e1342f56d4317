-- Whether committed events wait behind an older transaction that is still running.
SELECT EXISTS (
    SELECT 1 FROM {schema}.events
    WHERE tx_id >= (SELECT pg_snapshot_xmin(pg_current_snapshot()))
) AS hidden
