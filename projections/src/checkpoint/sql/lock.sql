SELECT commit_pos, prepare_pos FROM {schema}.checkpoints WHERE name = $1 FOR UPDATE
