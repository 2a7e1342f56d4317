INSERT INTO {schema}.instances (process, instance_id, version, status, reason, data, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
