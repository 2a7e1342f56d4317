UPDATE {schema}.outbox SET state = 'discarded', settled_at = $3 WHERE process = $1 AND instance_id = $2 AND state = 'pending'
