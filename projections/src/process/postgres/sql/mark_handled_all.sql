-- Records that the instances $2 handled the triggers $3 (pairwise).
INSERT INTO {schema}.handled (process, instance_id, trigger_id, handled_at) SELECT $1, u.instance_id, u.trigger_id, $4 FROM unnest($2::text[], $3::uuid[]) AS u(instance_id, trigger_id)
