-- As read_all.sql, keeping only the given event types ($4), in log-index order.
SELECT global_position, tx_id, stream_id, version, event_id, event_type,
       schema_version, data, metadata, recorded_at
FROM {schema}.events
WHERE (tx_id, global_position) > ($1, $2)
  AND tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
  AND event_type = ANY($4::text[])
ORDER BY tx_id, global_position
LIMIT $3
