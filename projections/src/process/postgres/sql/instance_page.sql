-- One page of instances of process $1, at most $4, in the byte order of their ids
-- (COLLATE "C": the memory store's order, whatever the database's collation), read
-- from the index instances_by_id_bytes. Ids "at or after $2 and not $3": a later page
-- passes the previous page's last id as both (ids after it); the first passes '' and
-- NULL (every id). $2 bounds the index scan either way, in a generic plan too.
SELECT data FROM {schema}.instances
WHERE process = $1
  AND instance_id COLLATE "C" >= $2
  AND instance_id COLLATE "C" IS DISTINCT FROM $3
ORDER BY instance_id COLLATE "C"
LIMIT $4
