-- The instances $2 of process $1 with their state, locked for the transaction in the
-- order of their ids (the one lock order every multi-instance transaction follows).
SELECT instance_id, data FROM {schema}.instances WHERE process = $1 AND instance_id = ANY($2::text[]) ORDER BY instance_id FOR UPDATE
