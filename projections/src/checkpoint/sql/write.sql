INSERT INTO {schema}.checkpoints (name, commit_pos, prepare_pos) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE
   SET commit_pos = EXCLUDED.commit_pos, prepare_pos = EXCLUDED.prepare_pos, updated_at = now()
