UPDATE {schema}.streams
SET version = version + cardinality($2::uuid[])
WHERE stream_id = $1
  AND version = $7
  AND NOT EXISTS (
      SELECT 1 FROM {schema}.events WHERE stream_id = $1 AND event_id = ANY($2::uuid[]))
RETURNING version
