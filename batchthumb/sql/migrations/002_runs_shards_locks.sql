-- Run history for scale-out: which shard a run worked on, and the Postgres backend that
-- holds its run lock (a run still 'running' whose backend is gone has died).
ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS shard text;
ALTER TABLE {schema}.runs ADD COLUMN IF NOT EXISTS lock_backend_pid integer;
CREATE INDEX IF NOT EXISTS runs_started_at ON {schema}.runs (started_at DESC);
