-- Reads for operators (version 4): pages of instances in the byte order of their ids
-- (COLLATE "C", whatever the database's collation), all or of one status; and one
-- instance's commands and deadlines in any state. The status index in that order
-- replaces instances_by_status (it serves the counts by status too), and the indexes of
-- an instance's commands and deadlines in any state replace the partial ones that held
-- only its pending commands and scheduled deadlines (the dispatcher's and the
-- cancellations' look-ups read an instance's few rows from them and filter on the
-- state), so the saga's writes maintain no more indexes than before. Built while the
-- migration holds its lock, so a large store's writes wait for the build.
CREATE INDEX IF NOT EXISTS instances_by_id_bytes
    ON {schema}.instances (process, instance_id COLLATE "C");
CREATE INDEX IF NOT EXISTS instances_by_status_bytes
    ON {schema}.instances (process, status, instance_id COLLATE "C");
DROP INDEX IF EXISTS {schema}.instances_by_status;
CREATE INDEX IF NOT EXISTS outbox_of_instance ON {schema}.outbox (process, instance_id, seq);
DROP INDEX IF EXISTS {schema}.outbox_pending_of_instance;
CREATE INDEX IF NOT EXISTS deadlines_by_instance ON {schema}.deadlines (process, instance_id, due_at);
DROP INDEX IF EXISTS {schema}.deadlines_of_instance;
