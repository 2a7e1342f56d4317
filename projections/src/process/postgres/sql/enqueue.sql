INSERT INTO {schema}.outbox (process, command_id, instance_id, issued, not_before) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (command_id) DO NOTHING
