CREATE SCHEMA IF NOT EXISTS {control};
CREATE TABLE IF NOT EXISTS {control}.checkpoints (
    name        text        NOT NULL,
    version     integer     NOT NULL,
    commit_pos  bigint      NOT NULL DEFAULT 0,
    prepare_pos bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS {control}.active (
    name        text        PRIMARY KEY,
    version     integer     NOT NULL,
    schema_name text        NOT NULL,
    switched_at timestamptz NOT NULL DEFAULT now()
);
