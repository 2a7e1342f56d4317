UPDATE {schema}.active SET version = $2, schema_name = $3, switched_at = now() WHERE name = $1
