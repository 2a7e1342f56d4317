-- Queues commands in the order given (their sequence numbers follow it), once per
-- command id. `pg_current_xact_id()` gives the transaction its xid (if it has none yet)
-- before any row's seq is drawn: the outbox scan's low-water mark relies on it
-- (`mark.rs`).
INSERT INTO {schema}.outbox (process, command_id, instance_id, issued, not_before) SELECT $1, u.command_id, u.instance_id, u.issued, $5 FROM unnest($2::uuid[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS u(command_id, instance_id, issued, n) WHERE pg_current_xact_id() IS NOT NULL ORDER BY u.n ON CONFLICT (command_id) DO NOTHING
