-- As read_all.sql, keeping only the given categories ($4, empty: any) and event types
-- ($5, empty: any).
SELECT global_position, tx_id, stream_id, version, event_id, event_type,
       schema_version, data, metadata, recorded_at
FROM {schema}.events
WHERE (tx_id, global_position) > ($1, $2)
  AND tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
  AND (cardinality($4::text[]) = 0 OR category = ANY($4::text[]))
  AND (cardinality($5::text[]) = 0 OR event_type = ANY($5::text[]))
ORDER BY tx_id, global_position
LIMIT $3
