INSERT INTO {schema}.streams (stream_id, version)
VALUES ($1, cardinality($2::uuid[]) - 1)
ON CONFLICT (stream_id) DO NOTHING
RETURNING version
