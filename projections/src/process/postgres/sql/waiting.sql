-- Commands waiting in the outbox (the pending-commands index alone).
SELECT count(*) FROM {schema}.outbox WHERE process = $1 AND state = 'pending'
