-- New instances.
INSERT INTO {schema}.instances (process, instance_id, version, status, reason, data, created_at, updated_at) SELECT $1, u.instance_id, u.version, u.status, u.reason, u.data, $7, $7 FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[]) AS u(instance_id, version, status, reason, data)
