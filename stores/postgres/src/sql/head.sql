-- The newest position every reader can see.
SELECT tx_id, global_position
FROM {schema}.events
WHERE tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
ORDER BY tx_id DESC, global_position DESC
LIMIT 1
