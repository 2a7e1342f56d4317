INSERT INTO {schema}.docs (key, created_commit, created_prepare, doc)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::jsonb[])
ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc
