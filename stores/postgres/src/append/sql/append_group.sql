-- Appends to several distinct streams in one statement (group commit). Per append
-- ($1..$4, one element each): stream, expectation kind (0 no stream, 1 exact,
-- 2 stream exists, 3 any), expected version (exact only) and event count. Per event
-- ($5..$11, flattened, each append's events together and in order): the 1-based index
-- of its append, its 1-based place in that append, id, type, schema version, data,
-- metadata.
--
-- Each append succeeds or is refused on its own, exactly as the single-append
-- statement decides: the stream row moves only if the expectation holds, and the
-- events go in only for stream rows that moved. An id already stored in the stream
-- violates the unique (stream_id, event_id) key and fails the whole statement; the
-- writer then runs each append alone and settles the refused one.
-- Returns one row per event written; an append with no row was refused.
WITH a AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[])
        WITH ORDINALITY AS a (stream_id, kind, expected, n, ord)
),
upd AS (
    UPDATE {schema}.streams s
    SET version = s.version + a.n
    FROM a
    WHERE s.stream_id = a.stream_id
      AND (a.kind = 2 OR (a.kind = 1 AND s.version = a.expected))
    RETURNING a.ord, a.stream_id, a.n, s.version
),
ins AS (
    INSERT INTO {schema}.streams AS s (stream_id, version)
    SELECT a.stream_id, a.n - 1 FROM a
    WHERE a.kind IN (0, 3)
    ON CONFLICT (stream_id) DO UPDATE
    SET version = s.version + excluded.version + 1
    WHERE EXISTS (SELECT 1 FROM a WHERE a.stream_id = excluded.stream_id AND a.kind = 3)
    RETURNING s.stream_id, s.version
),
moved AS (
    SELECT ord, stream_id, n, version FROM upd
    UNION ALL
    SELECT a.ord, a.stream_id, a.n, ins.version FROM ins JOIN a ON a.stream_id = ins.stream_id
)
INSERT INTO {schema}.events
    (stream_id, version, event_id, event_type, schema_version, data, metadata)
SELECT m.stream_id, m.version - m.n + e.place, e.id, e.ty, e.sv, e.data, e.meta
FROM unnest($5::bigint[], $6::bigint[], $7::uuid[], $8::text[], $9::bigint[], $10::jsonb[], $11::jsonb[])
         AS e (app, place, id, ty, sv, data, meta)
JOIN moved m ON m.ord = e.app
ORDER BY e.app, e.place
RETURNING stream_id, version, tx_id, global_position
