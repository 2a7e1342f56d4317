UPDATE {schema}.deadlines SET state = 'cancelled', settled_at = $4 WHERE process = $1 AND instance_id = $2 AND state = 'scheduled' AND ($3::text IS NULL OR key = $3)
