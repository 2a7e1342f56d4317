INSERT INTO {schema}.instances (process, instance_id, version, status, reason, data) VALUES ($1, $2, $3, $4, $5, $6)
