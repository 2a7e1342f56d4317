-- The single-event form of append_insert.sql, with scalar parameters: most commands
-- record one event, and this skips building, sending and unnesting arrays.
INSERT INTO {schema}.events
    (stream_id, version, event_id, event_type, schema_version, data, metadata)
SELECT $1, cas.version, $2::uuid, $3::text, $4::bigint, $5::jsonb, $6::jsonb
FROM cas
RETURNING stream_id, version, tx_id, global_position
