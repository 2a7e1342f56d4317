-- The global log after ($1, $2), only rows of transactions older than every running
-- one: those can no longer be joined by a row with a lower (tx_id, global_position).
SELECT global_position, tx_id, stream_id, version, event_id, event_type,
       schema_version, data, metadata, recorded_at
FROM {schema}.events
WHERE (tx_id, global_position) > ($1, $2)
  AND tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
ORDER BY tx_id, global_position
LIMIT $3
