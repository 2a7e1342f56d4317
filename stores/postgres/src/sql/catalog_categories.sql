-- The categories holding an event, in byte order, strictly after $1 (NULL: from the
-- first), at most $2.
--
-- A loose index scan of events_category_idx: each step of `walk` descends the index
-- once for the next category, so the cost is one probe per category, never a read of
-- the events (`SELECT DISTINCT category` reads them all).
--
-- The walk compares in the column's collation, not in byte order: the index is in the
-- database's collation, and the planner uses an index only for a comparison in the
-- index's own collation, so `category COLLATE "C" > …` in the walk is a sequential scan
-- and a sort of the whole table at every step (checked with EXPLAIN, also in a database
-- whose collation is C: "C" is not the default collation to the planner). So the walk
-- visits every category, and the byte-order filter, sort and limit apply to that list:
-- paging stays exact and stable whatever the database's collation, and a page costs one
-- index probe per category of the store (about 10 µs each), whatever the limit. An
-- index on `category COLLATE "C"` would let a page stop at its limit, but would cost
-- every append for an operator's occasional browsing.
WITH RECURSIVE walk(category) AS (
    (SELECT category FROM {schema}.events ORDER BY category LIMIT 1)
    UNION ALL
    SELECT (
        SELECT e.category FROM {schema}.events e
        WHERE e.category > w.category
        ORDER BY e.category
        LIMIT 1
    )
    FROM walk w
    WHERE w.category IS NOT NULL
)
SELECT category
FROM walk
WHERE category IS NOT NULL
  AND ($1::text IS NULL OR category COLLATE "C" > $1::text COLLATE "C")
ORDER BY category COLLATE "C"
LIMIT $2
