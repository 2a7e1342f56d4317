UPDATE {schema}.deadlines SET state = 'fired', fired_at = now() WHERE id = $1 AND state = 'scheduled' RETURNING timeout
