-- One page of the instances of process $1 in status $2: as instance_page.sql, from the
-- index instances_by_status_bytes.
SELECT data FROM {schema}.instances
WHERE process = $1
  AND status = $2
  AND instance_id COLLATE "C" >= $3
  AND instance_id COLLATE "C" IS DISTINCT FROM $4
ORDER BY instance_id COLLATE "C"
LIMIT $5
