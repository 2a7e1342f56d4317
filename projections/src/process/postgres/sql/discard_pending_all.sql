-- Discards the pending commands of the instances $2.
UPDATE {schema}.outbox SET state = 'discarded', settled_at = $3 WHERE process = $1 AND instance_id = ANY($2::text[]) AND state = 'pending'
