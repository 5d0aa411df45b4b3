-- Placeholders of a source (BlurHash, dominant colour, a tiny WebP as a data URI), made from
-- the decode its renditions come from; stale, like a rendition, when its fingerprint changes.
CREATE TABLE IF NOT EXISTS {schema}.placeholders (
    source_set  text        NOT NULL,
    source_key  text        NOT NULL,
    fingerprint text,
    version     text        NOT NULL,
    width       integer     NOT NULL,
    height      integer     NOT NULL,
    blurhash    text        NOT NULL,
    color       text        NOT NULL,
    lqip        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_set, source_key)
);
