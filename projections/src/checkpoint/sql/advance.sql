-- Compare-and-set: moves `$1` from ($2, $3) to ($4, $5); a missing row counts as the
-- start (0, 0). Returns one row when it moved, none when the checkpoint was elsewhere.
WITH moved AS (
    UPDATE {schema}.checkpoints
       SET commit_pos = $4, prepare_pos = $5, updated_at = now()
     WHERE name = $1 AND commit_pos = $2 AND prepare_pos = $3
    RETURNING 1
), created AS (
    INSERT INTO {schema}.checkpoints (name, commit_pos, prepare_pos)
    SELECT $1, $4, $5 WHERE $2 = 0 AND $3 = 0 AND NOT EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (name) DO NOTHING
    RETURNING 1
)
SELECT 1 FROM moved UNION ALL SELECT 1 FROM created
