UPDATE {schema}.outbox SET state = 'discarded' WHERE process = $1 AND instance_id = $2 AND state = 'pending'
