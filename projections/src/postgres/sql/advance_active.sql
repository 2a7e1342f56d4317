-- Moves the checkpoint of projection $1's active version from ($3, $4) to ($5, $6), if $2
-- is still the active version and its checkpoint still stands at the batch's start; one
-- round trip for what was a lock, a comparison and a write. The active row and the
-- checkpoint stay locked for the rest of the transaction: a second runner waits here,
-- then (the row re-read once the first commits) finds the checkpoint moved, moves
-- nothing and is fenced; a rebuild's take-over waits here for the live batch. Returns a
-- row if it moved the checkpoint. It never moves one back (a batch ending before its
-- start): what a view runner keeps relies on checkpoints only moving forward.
WITH a AS (
    SELECT a.schema_name
      FROM {schema}.active a
     WHERE a.name = $1 AND a.version = $2
       FOR UPDATE
)
UPDATE {schema}.checkpoints c
   SET commit_pos = $5, prepare_pos = $6, updated_at = now()
  FROM a
 WHERE c.name = a.schema_name AND c.commit_pos = $3 AND c.prepare_pos = $4
   AND ($5::bigint, $6::bigint) >= ($3::bigint, $4::bigint)
RETURNING c.name
