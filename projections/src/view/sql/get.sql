SELECT doc FROM {schema}.docs WHERE key = $1
