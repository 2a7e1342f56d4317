UPDATE {schema}.instances SET version = $3, status = $4, reason = $5, data = $6, updated_at = $8 WHERE process = $1 AND instance_id = $2 AND version = $7
