-- The trace context of the input that scheduled a deadline (see tessera_core::trace).
ALTER TABLE {schema}.deadlines ADD COLUMN IF NOT EXISTS trace jsonb;
