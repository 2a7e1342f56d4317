DELETE FROM {schema}.checkpoints WHERE name = $1
