SELECT stream_id, version, schema_version, data, taken_at
FROM {schema}.snapshots
WHERE stream_id = $1
