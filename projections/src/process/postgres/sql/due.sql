-- A page of the pending commands after seq $2 of instances not in $4, oldest first: the
-- worker's scan for the oldest pending command of each idle instance (`read::due` picks
-- them). Busy instances' rows are left out here, not in the worker: their commands sit
-- at the head of the queue, and the page would otherwise carry each of them (its JSON
-- written out and sorted) to be passed over on every call.
--
-- Every row also carries the statement's horizon, for the scan's low-water mark
-- (`mark.rs`): its snapshot's xmin, the highest seq it sees, and the first pending seq
-- after $2, busy or not. With no command in the page, one row of nulls
-- carries it. The mark is read through a subquery, so no plan is made for its value: a
-- custom plan for a mark near the end looks cheaper than the generic plan, and
-- PostgreSQL then made a custom plan for about three calls in four (1,888 plans in
-- 2,561 calls of a 30-s flash sale, 0.22 ms each).
WITH h AS MATERIALIZED (
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
           (SELECT max(seq) FROM {schema}.outbox) AS top,
           (SELECT min(f.seq) FROM {schema}.outbox f
             WHERE f.process = $1 AND f.state = 'pending' AND f.seq > (SELECT $2::bigint))
               AS first
)
SELECT o.seq, o.instance_id, o.issued, o.attempts, o.not_before, o.last_error,
       h.xmin AS h_xmin, h.top AS h_top, h.first AS h_first
FROM h
LEFT JOIN LATERAL (
    SELECT p.seq, p.instance_id, p.issued, p.attempts, p.not_before, p.last_error
    FROM {schema}.outbox p
    WHERE p.process = $1
      AND p.state = 'pending'
      AND p.seq > (SELECT $2::bigint)
      AND p.instance_id <> ALL($4::text[])
    ORDER BY p.seq
    LIMIT $3
) o ON true
ORDER BY o.seq
