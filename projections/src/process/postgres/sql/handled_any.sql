-- Which of the (instance, trigger) pairs $2, $3 of process $1 were handled already.
SELECT h.instance_id, h.trigger_id FROM {schema}.handled h JOIN unnest($2::text[], $3::uuid[]) AS u(instance_id, trigger_id) ON h.instance_id = u.instance_id AND h.trigger_id = u.trigger_id WHERE h.process = $1
