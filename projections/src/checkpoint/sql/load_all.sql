-- The checkpoints of the names $1 that have a row.
SELECT name, commit_pos, prepare_pos FROM {schema}.checkpoints WHERE name = ANY($1::text[])
