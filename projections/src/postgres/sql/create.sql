-- The control table of PostgreSQL projections: which version of each is active, and in
-- which schema. Checkpoints (one per version, named after its schema) live beside it in
-- the read side's one checkpoint table.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.active (
    name        text        PRIMARY KEY,
    version     integer     NOT NULL,
    schema_name text        NOT NULL,
    switched_at timestamptz NOT NULL DEFAULT now()
);
