INSERT INTO {schema}.handled (process, instance_id, trigger_id) VALUES ($1, $2, $3)
