INSERT INTO {schema}.deadlines (id, process, instance_id, key, due_at, timeout, trace) VALUES ($1, $2, $3, $4, $5, $6, $7)
