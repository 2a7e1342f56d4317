-- A view version's documents. A fifth of each page is left free so that a document's
-- next version fits beside it (a HOT update, no index write): most events update a
-- document (issue 22).
CREATE TABLE {schema}.docs (
    key             text   PRIMARY KEY,
    created_commit  bigint NOT NULL,
    created_prepare bigint NOT NULL,
    doc             jsonb  NOT NULL
) WITH (fillfactor = 80);
CREATE INDEX ON {schema}.docs (created_commit, created_prepare);
