-- How far the visible head trails what has committed, and the age of the oldest open
-- transaction holding it back (the one at the snapshot's xmin).
WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin),
hidden AS (
    SELECT count(*) AS events, max(tx_id) AS tx_id, max(global_position) AS position
    FROM {schema}.events, snap
    WHERE tx_id >= snap.xmin
),
holder AS (
    SELECT min(a.xact_start) AS xact_start
    FROM pg_stat_activity a, snap
    WHERE a.backend_xid IS NOT NULL
      AND a.backend_xid::text::bigint = (snap.xmin::text::numeric % 4294967296)
)
SELECT hidden.events, hidden.tx_id, hidden.position,
       extract(epoch FROM clock_timestamp() - holder.xact_start)::float8 AS holder_age
FROM hidden, holder
