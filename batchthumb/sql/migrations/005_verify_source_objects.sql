-- `verify` marks a row whose object the target's listing lacks ('missing') or lists with
-- another size ('size'): generate plans it as damaged and rebuilds it; recording clears it.
ALTER TABLE {schema}.renditions ADD COLUMN IF NOT EXISTS damaged text;

-- Source objects as the last listing of a source set's prefix saw them (the fingerprint of
-- a source set with `object_fingerprint`: size and ETag on S3, size and mtime on disk).
CREATE TABLE IF NOT EXISTS {schema}.source_objects (
    source_set  text        NOT NULL,
    source_key  text        NOT NULL,
    fingerprint text        NOT NULL,
    listed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_set, source_key)
);
