INSERT INTO {schema}.tessera_read_migrations (component, version, name) VALUES ($1, $2, $3)
