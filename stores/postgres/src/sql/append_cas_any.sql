INSERT INTO {schema}.streams AS s (stream_id, version)
VALUES ($1, cardinality($2::uuid[]) - 1)
ON CONFLICT (stream_id) DO UPDATE
SET version = s.version + cardinality($2::uuid[])
WHERE NOT EXISTS (
    SELECT 1 FROM {schema}.events WHERE stream_id = $1 AND event_id = ANY($2::uuid[]))
RETURNING version
