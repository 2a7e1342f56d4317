-- The process store's tables (its checkpoints live beside them in the read side's one
-- checkpoint table, created by `PgCheckpoints`).
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.instances (
    process     text        NOT NULL,
    instance_id text        NOT NULL,
    version     bigint      NOT NULL,
    status      text        NOT NULL,
    reason      text,
    data        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, instance_id)
);
CREATE INDEX IF NOT EXISTS instances_by_status ON {schema}.instances (process, status, instance_id);
CREATE TABLE IF NOT EXISTS {schema}.handled (
    process     text        NOT NULL,
    instance_id text        NOT NULL,
    trigger_id  uuid        NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (process, instance_id, trigger_id)
);
CREATE TABLE IF NOT EXISTS {schema}.outbox (
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    process       text        NOT NULL,
    command_id    uuid        NOT NULL UNIQUE,
    instance_id   text        NOT NULL,
    issued        jsonb       NOT NULL,
    state         text        NOT NULL DEFAULT 'pending',
    attempts      integer     NOT NULL DEFAULT 0,
    not_before    timestamptz NOT NULL,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_pending ON {schema}.outbox (process, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_pending_of_instance ON {schema}.outbox (process, instance_id, seq) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS {schema}.deadlines (
    id          uuid        PRIMARY KEY,
    process     text        NOT NULL,
    instance_id text        NOT NULL,
    key         text        NOT NULL,
    due_at      timestamptz NOT NULL,
    timeout     jsonb       NOT NULL,
    state       text        NOT NULL DEFAULT 'scheduled',
    created_at  timestamptz NOT NULL DEFAULT now(),
    fired_at    timestamptz
);
CREATE INDEX IF NOT EXISTS deadlines_due ON {schema}.deadlines (process, due_at) WHERE state = 'scheduled';
CREATE INDEX IF NOT EXISTS deadlines_of_instance ON {schema}.deadlines (process, instance_id) WHERE state = 'scheduled';
