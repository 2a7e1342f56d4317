-- Queues commands in the order given (their sequence numbers follow it), once per
-- command id.
INSERT INTO {schema}.outbox (process, command_id, instance_id, issued, not_before) SELECT $1, u.command_id, u.instance_id, u.issued, $5 FROM unnest($2::uuid[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS u(command_id, instance_id, issued, n) ORDER BY u.n ON CONFLICT (command_id) DO NOTHING
