-- Reads for operators (version 4): pages of instances in the byte order of their ids
-- (COLLATE "C", whatever the database's collation), all or of one status; and one
-- instance's commands and deadlines in any state (the older indexes of an instance's
-- rows hold only its pending commands and scheduled deadlines). The status index in
-- that order replaces instances_by_status: it serves the counts by status too. Built
-- while the migration holds its lock, so a large store's writes wait for the build.
CREATE INDEX IF NOT EXISTS instances_by_id_bytes
    ON {schema}.instances (process, instance_id COLLATE "C");
CREATE INDEX IF NOT EXISTS instances_by_status_bytes
    ON {schema}.instances (process, status, instance_id COLLATE "C");
DROP INDEX IF EXISTS {schema}.instances_by_status;
CREATE INDEX IF NOT EXISTS outbox_of_instance ON {schema}.outbox (process, instance_id, seq);
CREATE INDEX IF NOT EXISTS deadlines_by_instance ON {schema}.deadlines (process, instance_id, due_at);
