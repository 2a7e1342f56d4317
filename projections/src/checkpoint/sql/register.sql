INSERT INTO {schema}.checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING
