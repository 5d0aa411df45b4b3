-- The registry: what batchthumb wrote, what failed, and every run.
CREATE TABLE IF NOT EXISTS {schema}.renditions (
    source_set  text        NOT NULL,
    source_key  text        NOT NULL,
    rendition   text        NOT NULL,
    spec_hash   text        NOT NULL,
    fingerprint text,
    target      text        NOT NULL,   -- the target store's URL; object_key is relative to it
    object_key  text        NOT NULL,
    width       integer     NOT NULL,
    height      integer     NOT NULL,
    bytes       bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_set, source_key, rendition)
);
CREATE INDEX IF NOT EXISTS renditions_object_key ON {schema}.renditions (target, object_key);

CREATE TABLE IF NOT EXISTS {schema}.failures (
    source_set  text        NOT NULL,
    source_key  text        NOT NULL,
    fingerprint text,
    error_class text        NOT NULL,
    message     text        NOT NULL,
    permanent   boolean     NOT NULL,   -- skipped by later runs until the source changes
    attempts    integer     NOT NULL DEFAULT 1,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    run_id      bigint,
    PRIMARY KEY (source_set, source_key)
);

CREATE TABLE IF NOT EXISTS {schema}.runs (
    id          bigserial   PRIMARY KEY,
    command     text        NOT NULL,
    arguments   jsonb       NOT NULL DEFAULT '{{}}',
    host        text,
    pid         integer,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    counts      jsonb       NOT NULL DEFAULT '{{}}',
    outcome     text        NOT NULL DEFAULT 'running'
);
