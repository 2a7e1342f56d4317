INSERT INTO {schema}.handled (process, instance_id, trigger_id, handled_at) VALUES ($1, $2, $3, $4)
