-- The one checkpoint table of the read side: projections (one row per version, named
-- after the version's schema), process managers, reactors and relays.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
    name        text        PRIMARY KEY,
    commit_pos  bigint      NOT NULL DEFAULT 0,
    prepare_pos bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Tables of earlier releases take this shape: the process store keyed its rows by
-- `process`, the projection control tables by `(name, version)`.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = '{schema}.checkpoints'::regclass
                  AND attname = 'process' AND NOT attisdropped) THEN
        ALTER TABLE {schema}.checkpoints RENAME COLUMN process TO name;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_attribute
                WHERE attrelid = '{schema}.checkpoints'::regclass
                  AND attname = 'version' AND NOT attisdropped) THEN
        UPDATE {schema}.checkpoints SET name = name || '_v' || version;
        ALTER TABLE {schema}.checkpoints DROP CONSTRAINT checkpoints_pkey;
        ALTER TABLE {schema}.checkpoints DROP COLUMN version;
        ALTER TABLE {schema}.checkpoints ADD PRIMARY KEY (name);
    END IF;
END $$;
