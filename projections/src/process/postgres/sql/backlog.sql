-- What waits in the outbox: commands, those retried at least once, the oldest's issue time.
SELECT count(*), count(*) FILTER (WHERE attempts > 0), min(created_at)
FROM {schema}.outbox
WHERE process = $1 AND state = 'pending'
