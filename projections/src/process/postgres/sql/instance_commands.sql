-- Every outbox row of instance $2 of process $1, in any state, in issue order (from the
-- index outbox_of_instance).
SELECT issued, attempts, not_before, last_error, state
FROM {schema}.outbox
WHERE process = $1 AND instance_id = $2
ORDER BY seq
