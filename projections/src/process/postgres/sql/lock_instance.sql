SELECT data FROM {schema}.instances WHERE process = $1 AND instance_id = $2 FOR UPDATE
