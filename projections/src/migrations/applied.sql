SELECT version FROM {schema}.tessera_read_migrations WHERE component = $1
