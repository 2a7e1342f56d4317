-- Queues one command, once per command id. `pg_current_xact_id()` gives the
-- transaction its xid (if it has none yet) before the row's seq is drawn: the outbox
-- scan's low-water mark relies on it (`mark.rs`).
INSERT INTO {schema}.outbox (process, command_id, instance_id, issued, not_before) SELECT $1, $2, $3, $4, $5 WHERE pg_current_xact_id() IS NOT NULL ON CONFLICT (command_id) DO NOTHING
