SELECT issued, attempts, not_before, last_error FROM {schema}.outbox WHERE process = $1 AND state = 'pending' ORDER BY seq LIMIT $2
