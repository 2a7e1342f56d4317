CREATE TABLE {schema}.docs (
    key             text   PRIMARY KEY,
    created_commit  bigint NOT NULL,
    created_prepare bigint NOT NULL,
    doc             jsonb  NOT NULL
);
CREATE INDEX ON {schema}.docs (created_commit, created_prepare);
