-- advance.sql for many distinct names at once: moves each $1[i] from ($2[i], $3[i]) to
-- ($4[i], $5[i]), a missing row counting as the start (0, 0). Returns the index (from
-- 1) of each one that moved.
WITH m AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
        WITH ORDINALITY AS m(name, from_commit, from_prepare, to_commit, to_prepare, n)
), moved AS (
    UPDATE {schema}.checkpoints c
       SET commit_pos = m.to_commit, prepare_pos = m.to_prepare, updated_at = now()
      FROM m
     WHERE c.name = m.name AND c.commit_pos = m.from_commit AND c.prepare_pos = m.from_prepare
    RETURNING m.n
), created AS (
    INSERT INTO {schema}.checkpoints (name, commit_pos, prepare_pos)
    SELECT m.name, m.to_commit, m.to_prepare FROM m
     WHERE m.from_commit = 0 AND m.from_prepare = 0
       AND NOT EXISTS (SELECT 1 FROM {schema}.checkpoints c WHERE c.name = m.name)
    ON CONFLICT (name) DO NOTHING
    RETURNING name
)
SELECT n FROM moved
UNION ALL
SELECT m.n FROM created JOIN m ON m.name = created.name
