-- Keeps the newest snapshot: an older one never replaces it.
INSERT INTO {schema}.snapshots AS s (stream_id, version, schema_version, data, taken_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stream_id) DO UPDATE
SET version = EXCLUDED.version,
    schema_version = EXCLUDED.schema_version,
    data = EXCLUDED.data,
    taken_at = EXCLUDED.taken_at
WHERE s.version <= EXCLUDED.version
