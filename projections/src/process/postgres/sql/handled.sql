SELECT 1 FROM {schema}.handled WHERE process = $1 AND instance_id = $2 AND trigger_id = $3
