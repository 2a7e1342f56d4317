-- A page of documents created after ($1, $2) that contain $3 (an object of top-level
-- fields and the values they must equal), oldest first, at most $4.
SELECT created_commit, created_prepare, doc
  FROM {schema}.docs
 WHERE (created_commit, created_prepare) > ($1, $2)
   AND doc @> $3
 ORDER BY created_commit, created_prepare
 LIMIT $4
