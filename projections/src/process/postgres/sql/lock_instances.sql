-- Locks the instances $2 of process $1 for the transaction, in the order of their ids:
-- every transaction that locks several instances takes them in this one order (and
-- before any of their outbox or deadline rows), so no two of them deadlock.
SELECT instance_id FROM {schema}.instances WHERE process = $1 AND instance_id = ANY($2::text[]) ORDER BY instance_id FOR UPDATE
