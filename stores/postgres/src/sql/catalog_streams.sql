-- The streams in byte order of their ids, strictly after $1 (NULL: from the first), of
-- category $2 (NULL: any; the category as the events' generated column computes it),
-- at most $3, with their current versions.
--
-- In byte order (COLLATE "C") whatever the database's collation, so the primary key's
-- index, in the database's collation, cannot serve the order: this is a scan of the
-- streams table keeping the $3 lowest ids (a top-N sort, its memory bounded by the
-- limit), one row per stream, never a read of the events.
SELECT stream_id, version
FROM {schema}.streams
WHERE ($1::text IS NULL OR stream_id COLLATE "C" > $1::text COLLATE "C")
  AND ($2::text IS NULL OR split_part(stream_id, '-', 1) = $2::text)
ORDER BY stream_id COLLATE "C"
LIMIT $3
