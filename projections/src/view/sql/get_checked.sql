-- The document under $1 in {schema} (the version last seen active) and the active
-- version of projection $2 (in control schema {control}), in one statement: one snapshot
-- for both, so the document is the active version's when the two agree.
SELECT (SELECT version FROM {control}.active WHERE name = $2) AS active,
       (SELECT doc FROM {schema}.docs WHERE key = $1) AS doc
