-- Every deadline of instance $2 of process $1, in any state, by due time (from the index
-- deadlines_by_instance).
SELECT id, instance_id, key, due_at, state
FROM {schema}.deadlines
WHERE process = $1 AND instance_id = $2
ORDER BY due_at, id
