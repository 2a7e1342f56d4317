-- Cancels the scheduled deadlines of the instances $2 with the keys $3 (pairwise; a
-- null key: every deadline of that instance).
UPDATE {schema}.deadlines d SET state = 'cancelled', settled_at = $4 FROM unnest($2::text[], $3::text[]) AS c(instance_id, key) WHERE d.process = $1 AND d.instance_id = c.instance_id AND d.state = 'scheduled' AND (c.key IS NULL OR d.key = c.key)
