SELECT id, instance_id FROM {schema}.deadlines WHERE process = $1 AND state = 'scheduled' AND due_at <= $2 ORDER BY due_at LIMIT $3
