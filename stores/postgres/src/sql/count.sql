-- How many events after ($1, $2) and at or before ($3, $4) readers can see, of the
-- given event types ($5, empty: any): a range of the log index, counted, not read.
SELECT count(*) AS events
FROM {schema}.events
WHERE (tx_id, global_position) > ($1, $2)
  AND (tx_id, global_position) <= ($3, $4)
  AND tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
  AND (cardinality($5::text[]) = 0 OR event_type = ANY($5::text[]))
