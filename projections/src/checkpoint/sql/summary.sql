-- How many checkpoints are named with the prefix $1, and when one last moved.
SELECT count(*), max(updated_at) FROM {schema}.checkpoints WHERE starts_with(name, $1)
