-- Streams: one row per stream holding its current version. Compare-and-set on this
-- row is the optimistic-concurrency check of every append.
CREATE TABLE {schema}.streams (
    stream_id text PRIMARY KEY,
    version   bigint NOT NULL CHECK (version >= 0)
);

-- The log. `tx_id` is the writing transaction's id: readers order by
-- (tx_id, global_position) and only read rows whose transaction is older than every
-- running one, so a late commit can never be skipped.
CREATE TABLE {schema}.events (
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    category        text NOT NULL GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    version         bigint NOT NULL,
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    schema_version  bigint NOT NULL,
    data            jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (stream_id, version),
    CONSTRAINT events_stream_event_id_key UNIQUE (stream_id, event_id)
);

CREATE INDEX events_log_idx ON {schema}.events (tx_id, global_position);
CREATE INDEX events_category_idx ON {schema}.events (category, tx_id, global_position);

-- Snapshots: at most one per stream, the newest.
CREATE TABLE {schema}.snapshots (
    stream_id      text PRIMARY KEY,
    version        bigint NOT NULL,
    schema_version bigint NOT NULL,
    data           jsonb NOT NULL,
    taken_at       timestamptz NOT NULL
);
