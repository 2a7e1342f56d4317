UPDATE {schema}.streams
SET version = version + cardinality($2::uuid[])
WHERE stream_id = $1
  AND version = $7
RETURNING version
