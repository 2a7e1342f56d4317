-- As count.sql, of the given categories ($5, non-empty) and event types ($6, empty:
-- any): one range of the category index (category, tx_id, global_position) per
-- category, as read_all_filtered.sql reads them.
SELECT COALESCE(sum(e.n), 0)::bigint AS events
FROM (SELECT DISTINCT unnest($5::text[])) AS c(category)
CROSS JOIN LATERAL (
    SELECT count(*) AS n
    FROM {schema}.events ev
    WHERE ev.category = c.category
      AND (ev.tx_id, ev.global_position) > ($1, $2)
      AND (ev.tx_id, ev.global_position) <= ($3, $4)
      AND ev.tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
      AND (cardinality($6::text[]) = 0 OR ev.event_type = ANY($6::text[]))
) e
