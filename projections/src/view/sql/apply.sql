-- A view's live batch in one statement, so one transaction: `moved` is the read side's
-- compare-and-set of the checkpoint (`advance_active.sql` of the control schema, $1..$6:
-- it also locks the active row and the checkpoint, fencing a second runner and a
-- rebuild's take-over as in a batch of several statements), and the documents are
-- written only if it moved: known ones upserted ($7 keys, $8 and $9 the positions that
-- created them, $10 the documents), ones presumed new inserted ($11..$14 the same), so
-- that one stored after all fails the statement on the primary key and nothing of it
-- commits. Answers how many checkpoints moved: 1, or 0 when fenced (nothing written).
WITH moved AS (
{advance}
), written AS (
    INSERT INTO {schema}.docs (key, created_commit, created_prepare, doc)
    SELECT * FROM unnest($7::text[], $8::bigint[], $9::bigint[], $10::jsonb[])
     WHERE EXISTS (SELECT 1 FROM moved)
    ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc
), created AS (
    INSERT INTO {schema}.docs (key, created_commit, created_prepare, doc)
    SELECT * FROM unnest($11::text[], $12::bigint[], $13::bigint[], $14::jsonb[])
     WHERE EXISTS (SELECT 1 FROM moved)
)
SELECT count(*) FROM moved
