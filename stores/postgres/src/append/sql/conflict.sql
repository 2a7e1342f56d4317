-- What an append that did not go in collided with: the stream's version and where the
-- batch's ids are stored.
SELECT s.version AS current,
       e.event_id, e.version, e.tx_id, e.global_position
FROM (SELECT 1) AS one
LEFT JOIN {schema}.streams s ON s.stream_id = $1
LEFT JOIN {schema}.events e ON e.stream_id = $1 AND e.event_id = ANY($2::uuid[])
