SELECT version FROM {schema}.streams WHERE stream_id = $1
