-- Retention (version 2): when each outbox row and deadline was settled, and the indexes
-- a prune walks, oldest first. Rows settled before this version take the time they were
-- dispatched or fired, else the time they were created (no later than their settling).
ALTER TABLE {schema}.outbox ADD COLUMN IF NOT EXISTS settled_at timestamptz;
ALTER TABLE {schema}.deadlines ADD COLUMN IF NOT EXISTS settled_at timestamptz;
UPDATE {schema}.outbox SET settled_at = COALESCE(dispatched_at, created_at)
    WHERE state <> 'pending' AND settled_at IS NULL;
UPDATE {schema}.deadlines SET settled_at = COALESCE(fired_at, created_at)
    WHERE state <> 'scheduled' AND settled_at IS NULL;
CREATE INDEX IF NOT EXISTS handled_by_age ON {schema}.handled (process, handled_at);
CREATE INDEX IF NOT EXISTS outbox_settled ON {schema}.outbox (process, settled_at) WHERE state <> 'pending';
CREATE INDEX IF NOT EXISTS deadlines_settled ON {schema}.deadlines (process, settled_at) WHERE state <> 'scheduled';
