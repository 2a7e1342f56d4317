-- The global log after ($1, $2) as read_all.sql reads it, and on every row (on one row
-- of nulls when there is none) whether committed events wait behind an older
-- transaction that is still running, as hidden.sql asks: one statement, so one
-- snapshot for both and no transaction block (BEGIN, two queries and COMMIT were four
-- statements for the server on every wake-up of the store's reader). With the one
-- snapshot, "hidden" is exactly "visible rows the read left out for being at or past
-- the xmin".
WITH snap AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT e.global_position, e.tx_id, e.stream_id, e.version, e.event_id, e.event_type,
       e.schema_version, e.data, e.metadata, e.recorded_at, h.hidden
FROM (
    SELECT COALESCE(
        (SELECT tx_id FROM {schema}.events ORDER BY tx_id DESC LIMIT 1)
            >= (SELECT xmin FROM snap),
        false
    ) AS hidden
) h
LEFT JOIN LATERAL (
    SELECT global_position, tx_id, stream_id, version, event_id, event_type,
           schema_version, data, metadata, recorded_at
    FROM {schema}.events
    WHERE (tx_id, global_position) > ($1, $2)
      AND tx_id < (SELECT xmin FROM snap)
    ORDER BY tx_id, global_position
    LIMIT $3
) e ON true
ORDER BY e.tx_id, e.global_position
