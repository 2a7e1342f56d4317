-- The active version and its checkpoint, both locked: a second runner waits here, then
-- finds the checkpoint moved; a rebuild's take-over waits here for the live batch.
SELECT a.version, c.commit_pos, c.prepare_pos
  FROM {schema}.active a
  JOIN {schema}.checkpoints c ON c.name = a.schema_name
 WHERE a.name = $1
   FOR UPDATE
