-- A purge marks the rows of a batch before it deletes their objects, and removes them after:
-- a crash in between leaves marked rows, which no run trusts (planned as missing, counted
-- as missing), never an unmarked row pointing at nothing.
ALTER TABLE {schema}.renditions ADD COLUMN IF NOT EXISTS deleting_since timestamptz;
