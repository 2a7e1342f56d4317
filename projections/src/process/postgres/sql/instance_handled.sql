-- The triggers instance $2 of process $1 handled, oldest first (from the primary key).
SELECT trigger_id, handled_at
FROM {schema}.handled
WHERE process = $1 AND instance_id = $2
ORDER BY handled_at, trigger_id
