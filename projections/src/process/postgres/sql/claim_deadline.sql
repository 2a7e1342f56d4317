UPDATE {schema}.deadlines SET state = 'fired', fired_at = $2, settled_at = $2 WHERE id = $1 AND state = 'scheduled' RETURNING timeout, trace
