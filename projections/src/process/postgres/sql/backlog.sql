-- What waits in the outbox: commands, those retried at least once, the oldest's issue
-- time; then instances by status, and deadlines scheduled and due at $2.
SELECT count(*), count(*) FILTER (WHERE attempts > 0), min(created_at),
    (SELECT count(*) FROM {schema}.instances WHERE process = $1 AND status = 'pending'),
    (SELECT count(*) FROM {schema}.instances WHERE process = $1 AND status = 'compensating'),
    (SELECT count(*) FROM {schema}.instances WHERE process = $1 AND status = 'completed'),
    (SELECT count(*) FROM {schema}.instances WHERE process = $1 AND status = 'failed'),
    (SELECT count(*) FROM {schema}.deadlines WHERE process = $1 AND state = 'scheduled'),
    (SELECT count(*) FROM {schema}.deadlines WHERE process = $1 AND state = 'scheduled' AND due_at <= $2)
FROM {schema}.outbox
WHERE process = $1 AND state = 'pending'
