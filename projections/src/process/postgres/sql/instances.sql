SELECT data FROM {schema}.instances WHERE process = $1 AND ($2::text IS NULL OR status = $2) ORDER BY instance_id COLLATE "C"
