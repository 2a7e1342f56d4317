SELECT global_position, tx_id, stream_id, version, event_id, event_type,
       schema_version, data, metadata, recorded_at
FROM {schema}.events
WHERE stream_id = $1 AND event_id = $2
