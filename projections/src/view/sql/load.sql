SELECT key, created_commit, created_prepare, doc FROM {schema}.docs WHERE key = ANY($1)
