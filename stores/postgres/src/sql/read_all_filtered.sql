-- As read_all.sql, keeping only the given event types ($5, empty: any) of the given
-- categories ($4, non-empty). Each category is read on its own in index order
-- (category, tx_id, global_position) and stops at the limit; the merge keeps the first
-- $3. A single `category = ANY($4)` lets the planner fetch every later row of the
-- category and sort it, which turns a catch-up into quadratic work.
SELECT e.global_position, e.tx_id, e.stream_id, e.version, e.event_id, e.event_type,
       e.schema_version, e.data, e.metadata, e.recorded_at
FROM (SELECT DISTINCT unnest($4::text[])) AS c(category)
CROSS JOIN LATERAL (
    SELECT *
    FROM {schema}.events ev
    WHERE ev.category = c.category
      AND (ev.tx_id, ev.global_position) > ($1, $2)
      AND ev.tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
      AND (cardinality($5::text[]) = 0 OR ev.event_type = ANY($5::text[]))
    ORDER BY ev.tx_id, ev.global_position
    LIMIT $3
) e
ORDER BY e.tx_id, e.global_position
LIMIT $3
