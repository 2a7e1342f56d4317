-- Appended to `WITH cas AS (<compare-and-set on the stream row>)`: the stream row's new
-- version if the expectation held, else no row. The events go in only when the stream
-- row moved, in one statement, so the two can never disagree. Unique
-- (stream_id, version) and (stream_id, event_id) are the backstops: an id already
-- stored in the stream fails the statement, and the writer settles it.
-- Returns one row per event written; none when the append was refused.
INSERT INTO {schema}.events
    (stream_id, version, event_id, event_type, schema_version, data, metadata)
SELECT $1, cas.version - cardinality($2::uuid[]) + e.ord, e.id, e.ty, e.sv, e.data, e.meta
FROM cas,
     unnest($2::uuid[], $3::text[], $4::bigint[], $5::jsonb[], $6::jsonb[])
         WITH ORDINALITY AS e (id, ty, sv, data, meta, ord)
ORDER BY e.ord
RETURNING stream_id, version, tx_id, global_position
