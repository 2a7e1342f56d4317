-- For each stream $1[i]: the version of its last event below version $2[i] whose type
-- is one of $3 (null: none), in the order asked ($1's index). One index probe per
-- stream: (stream_id, version) backwards, filtered on the type.
SELECT q.n, (
    SELECT e.version FROM {schema}.events e
    WHERE e.stream_id = q.stream_id AND e.version < q.below AND e.event_type = ANY($3::text[])
    ORDER BY e.version DESC
    LIMIT 1
) AS version
FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS q(stream_id, below, n)
