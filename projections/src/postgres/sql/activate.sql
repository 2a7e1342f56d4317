INSERT INTO {schema}.active (name, version, schema_name) VALUES ($1, $2, $3)
