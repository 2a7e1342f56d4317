INSERT INTO {schema}.streams AS s (stream_id, version)
VALUES ($1, cardinality($2::uuid[]) - 1)
ON CONFLICT (stream_id) DO UPDATE
SET version = s.version + cardinality($2::uuid[])
RETURNING version
