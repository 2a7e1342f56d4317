SELECT id, instance_id, key, due_at, state FROM {schema}.deadlines WHERE process = $1 ORDER BY due_at, id
