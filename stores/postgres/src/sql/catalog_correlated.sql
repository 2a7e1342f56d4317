-- The events whose metadata correlation id is $3 (its canonical text, as the store
-- writes it), after ($1, $2), in log order, at most $4, only rows every reader can see
-- (the visibility condition of read_all.sql).
--
-- No index serves the correlation id (one would cost every append): this walks the log
-- index from ($1, $2) in order and stops at the $4-th match, so a correlation with
-- fewer events than the limit after ($1, $2) costs a scan of the rest of the log. Meant
-- for an operator's occasional lookup.
SELECT global_position, tx_id, stream_id, version, event_id, event_type,
       schema_version, data, metadata, recorded_at
FROM {schema}.events
WHERE (tx_id, global_position) > ($1, $2)
  AND tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
  AND metadata->>'correlation_id' = $3::text
ORDER BY tx_id, global_position
LIMIT $4
