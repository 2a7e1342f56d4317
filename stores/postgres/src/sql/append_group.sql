-- Appends to several distinct streams in one statement (group commit). Per append
-- ($1..$4, one element each): stream, expectation kind (0 no stream, 1 exact,
-- 2 stream exists, 3 any), expected version (exact only) and event count. Per event
-- ($5..$10, flattened, each append's events together and in order): the 1-based index
-- of its append, id, type, schema version, data, metadata.
--
-- Each append succeeds or is refused on its own, exactly as the single-append
-- statement decides: the stream row moves only if the expectation holds and no id of
-- the batch is stored yet, and the events go in only for stream rows that moved.
WITH a AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[])
        WITH ORDINALITY AS a (stream_id, kind, expected, n, ord)
),
e AS (
    SELECT * FROM unnest($5::bigint[], $6::uuid[], $7::text[], $8::bigint[], $9::jsonb[], $10::jsonb[])
        WITH ORDINALITY AS e (app, id, ty, sv, data, meta, pos)
),
taken AS (
    SELECT DISTINCT e.app FROM e
    JOIN a ON a.ord = e.app
    WHERE EXISTS (
        SELECT 1 FROM {schema}.events s WHERE s.stream_id = a.stream_id AND s.event_id = e.id)
),
upd AS (
    UPDATE {schema}.streams s
    SET version = s.version + a.n
    FROM a
    WHERE s.stream_id = a.stream_id
      AND (a.kind = 2 OR (a.kind = 1 AND s.version = a.expected))
      AND a.ord NOT IN (SELECT app FROM taken)
    RETURNING a.ord, s.version
),
ins AS (
    INSERT INTO {schema}.streams AS s (stream_id, version)
    SELECT a.stream_id, a.n - 1 FROM a
    WHERE a.kind IN (0, 3) AND a.ord NOT IN (SELECT app FROM taken)
    ON CONFLICT (stream_id) DO UPDATE
    SET version = s.version + excluded.version + 1
    WHERE EXISTS (SELECT 1 FROM a WHERE a.stream_id = excluded.stream_id AND a.kind = 3)
    RETURNING s.stream_id, s.version
),
moved AS (
    SELECT ord, version FROM upd
    UNION ALL
    SELECT a.ord, ins.version FROM ins JOIN a ON a.stream_id = ins.stream_id
),
ev AS (
    INSERT INTO {schema}.events
        (stream_id, version, event_id, event_type, schema_version, data, metadata)
    SELECT a.stream_id, m.version - a.n + row_number() OVER (PARTITION BY e.app ORDER BY e.pos),
           e.id, e.ty, e.sv, e.data, e.meta
    FROM e
    JOIN moved m ON m.ord = e.app
    JOIN a ON a.ord = e.app
    ORDER BY e.pos
    RETURNING stream_id, version, tx_id, global_position
)
SELECT a.ord,
       count(ev.version) AS appended,
       min(ev.version) AS first_version,
       max(ev.version) AS last_version,
       max(ev.tx_id) AS tx_id,
       max(ev.global_position) AS last_position
FROM a LEFT JOIN ev ON ev.stream_id = a.stream_id
GROUP BY a.ord
ORDER BY a.ord
