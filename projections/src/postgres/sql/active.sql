SELECT version, schema_name FROM {schema}.active WHERE name = $1
