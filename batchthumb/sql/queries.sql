-- Named queries. `{name}` placeholders are identifiers from the config, validated and
-- quoted by batchthumb/queries.py before they get here; everything else is a $n parameter.

-- name: schema_lock
SELECT pg_advisory_xact_lock(hashtext('batchthumb-migrate:' || $1))

-- name: create_version_table
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: schema_version
SELECT coalesce(max(version), 0) FROM {schema}.schema_version

-- name: set_schema_version
INSERT INTO {schema}.schema_version (version) VALUES ($1)

-- name: table_columns
-- The columns of a table or view, by schema and name (the catalog check of config identifiers).
SELECT a.attname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped

-- name: check_filter
SELECT 1 FROM {table} AS t WHERE ({filter}) LIMIT 0

-- name: plan_page
-- One keyset page of the source set, anti-joined against the registry.
-- $1 rendition names, $2 their spec hashes, $3 source set, $4 wanted states,
-- $5 retry permanent failures, $6 target URL, $7 page size, $8 shard count, $9 shard index,
-- $10 the placeholders' version when the set makes them (else NULL), $11 per rendition
-- whether it crops about the focal point, $12 last key of the previous page. A shard is the
-- sources whose key hashes to its index.
-- {ppoi} is the source set's focal point (versatileimagefield's PPOI column, or its focal point
-- columns) or NULL; it is part of {fingerprint}, not of {plain_fingerprint}: a moved focal
-- point makes the crops stale, not the fits.
-- Returns the sources with work (one row each, renditions aggregated, and whether their
-- placeholders are wanted: missing or stale like a rendition), then one cursor row.
WITH page AS (
    SELECT t.{key_column} AS row_key, t.{path_column}::text AS source_key,
           {fingerprint}::text AS fingerprint, {plain_fingerprint}::text AS plain_fingerprint,
           {ppoi}::text AS ppoi
    FROM {table} AS t
    WHERE {after} t.{path_column} IS NOT NULL AND t.{path_column}::text <> '' AND ({filter})
      AND ($8 = 1 OR mod(mod(hashtextextended(t.{path_column}::text, 0), $8) + $8, $8) = $9)
    ORDER BY t.{key_column}
    LIMIT $7
), work AS (
    SELECT p.row_key, p.source_key, p.fingerprint, p.plain_fingerprint, p.ppoi, w.rendition, w.ord,
           CASE WHEN r.target = $6 THEN r.object_key END AS old_object_key,
           CASE WHEN r.target = $6 THEN r.bytes END AS old_bytes,
           CASE WHEN r.source_key IS NULL OR r.target <> $6 OR r.deleting_since IS NOT NULL
                THEN 'missing'
                WHEN r.damaged IS NOT NULL THEN 'damaged'
                WHEN r.spec_hash <> w.spec_hash
                  OR r.fingerprint IS DISTINCT FROM
                     (CASE WHEN w.focal THEN p.fingerprint ELSE p.plain_fingerprint END) THEN 'stale'
                ELSE 'done' END AS state
    FROM page AS p
    CROSS JOIN unnest($1::text[], $2::text[], $11::boolean[])
         WITH ORDINALITY AS w(rendition, spec_hash, focal, ord)
    LEFT JOIN {schema}.renditions AS r
           ON r.source_set = $3 AND r.source_key = p.source_key AND r.rendition = w.rendition
    UNION ALL
    SELECT p.row_key, p.source_key, p.fingerprint, p.plain_fingerprint, p.ppoi, NULL, NULL, NULL,
           NULL,
           CASE WHEN h.source_key IS NULL THEN 'missing'
                WHEN h.version <> $10 OR h.fingerprint IS DISTINCT FROM p.plain_fingerprint
                THEN 'stale'
                ELSE 'done' END
    FROM page AS p
    LEFT JOIN {schema}.placeholders AS h ON h.source_set = $3 AND h.source_key = p.source_key
    WHERE $10::text IS NOT NULL
)
SELECT false AS is_cursor, w.row_key, w.source_key, w.fingerprint, w.plain_fingerprint, w.ppoi,
       coalesce(array_agg(w.rendition ORDER BY w.ord) FILTER (WHERE w.ord IS NOT NULL), ARRAY[]::text[])
         AS renditions,
       coalesce(array_agg(w.old_object_key ORDER BY w.ord) FILTER (WHERE w.ord IS NOT NULL), ARRAY[]::text[])
         AS old_object_keys,
       coalesce(array_agg(w.old_bytes ORDER BY w.ord) FILTER (WHERE w.ord IS NOT NULL), ARRAY[]::bigint[])
         AS old_bytes,
       coalesce(array_agg(w.state ORDER BY w.ord) FILTER (WHERE w.ord IS NOT NULL), ARRAY[]::text[]) AS states,
       bool_or(w.ord IS NULL) AS placeholders,
       NULL::bigint AS page_rows
FROM work AS w
WHERE w.state = ANY($4::text[])
  AND ($5 OR NOT EXISTS (
        SELECT 1 FROM {schema}.failures AS f
        WHERE f.source_set = $3 AND f.source_key = w.source_key AND f.permanent
          AND f.fingerprint IS NOT DISTINCT FROM w.fingerprint))
GROUP BY w.row_key, w.source_key, w.fingerprint, w.plain_fingerprint, w.ppoi
UNION ALL
SELECT true, (SELECT row_key FROM page ORDER BY row_key DESC LIMIT 1), NULL, NULL, NULL, NULL,
       NULL, NULL, NULL, NULL, NULL, (SELECT count(*) FROM page)

-- name: rendition_counts
-- Per rendition: sources done, missing, damaged (marked by verify), stale; and bytes.
-- $1 names, $2 spec hashes, $3 source set, $4 target URL, $5 whether each crops about the
-- focal point. The states are plan_page's.
SELECT w.rendition,
       count(*) FILTER (WHERE r.source_key IS NOT NULL AND r.target = $4
                          AND r.deleting_since IS NULL AND r.damaged IS NULL
                          AND r.spec_hash = w.spec_hash
                          AND r.fingerprint IS NOT DISTINCT FROM
                              (CASE WHEN w.focal THEN {fingerprint}::text ELSE {plain_fingerprint}::text END))
                          AS done,
       count(*) FILTER (WHERE r.source_key IS NULL OR r.target <> $4
                          OR r.deleting_since IS NOT NULL) AS missing,
       count(*) FILTER (WHERE r.source_key IS NOT NULL AND r.target = $4
                          AND r.deleting_since IS NULL AND r.damaged IS NOT NULL) AS damaged,
       count(*) FILTER (WHERE r.source_key IS NOT NULL AND r.target = $4
                          AND r.deleting_since IS NULL AND r.damaged IS NULL
                          AND (r.spec_hash <> w.spec_hash
                               OR r.fingerprint IS DISTINCT FROM
                                  (CASE WHEN w.focal THEN {fingerprint}::text ELSE {plain_fingerprint}::text END)))
                          AS stale,
       coalesce(sum(r.bytes) FILTER (WHERE r.target = $4), 0)::bigint AS bytes
FROM {table} AS t
CROSS JOIN unnest($1::text[], $2::text[], $5::boolean[]) AS w(rendition, spec_hash, focal)
LEFT JOIN {schema}.renditions AS r
       ON r.source_set = $3 AND r.source_key = t.{path_column}::text AND r.rendition = w.rendition
WHERE t.{path_column} IS NOT NULL AND t.{path_column}::text <> '' AND ({filter})
GROUP BY w.rendition

-- name: manifest_page
-- `manifest`: one keyset page of sources of target $1 with their rows of the configured
-- 'set/rendition' pairs ($2; only these source keys, $3, unless NULL), after ($4, $5), $6
-- sources: the variants aggregated, the placeholders beside. Rows being deleted or marked
-- damaged are left out: their objects may be gone.
SELECT r.source_set, r.source_key,
       array_agg(r.rendition ORDER BY r.rendition) AS renditions,
       array_agg(r.object_key ORDER BY r.rendition) AS object_keys,
       array_agg(r.width ORDER BY r.rendition) AS widths,
       array_agg(r.height ORDER BY r.rendition) AS heights,
       array_agg(r.bytes ORDER BY r.rendition) AS bytes,
       min(h.width) AS source_width, min(h.height) AS source_height, min(h.blurhash) AS blurhash,
       min(h.color) AS color, min(h.lqip) AS lqip
FROM {schema}.renditions AS r
LEFT JOIN {schema}.placeholders AS h ON h.source_set = r.source_set AND h.source_key = r.source_key
WHERE r.target = $1 AND r.deleting_since IS NULL AND r.damaged IS NULL
  AND r.source_set || '/' || r.rendition = ANY($2::text[])
  AND ($3::text[] IS NULL OR r.source_key = ANY($3::text[]))
  AND (r.source_set, r.source_key) > ($4::text, $5::text)
GROUP BY r.source_set, r.source_key
ORDER BY r.source_set, r.source_key
LIMIT $6

-- name: failure_count
SELECT count(*) FROM {schema}.failures WHERE source_set = $1

-- name: record_renditions
INSERT INTO {schema}.renditions AS r
    (source_set, source_key, rendition, spec_hash, fingerprint, target, object_key,
     width, height, bytes)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::integer[], $9::integer[], $10::bigint[])
ON CONFLICT (source_set, source_key, rendition) DO UPDATE
SET spec_hash = EXCLUDED.spec_hash, fingerprint = EXCLUDED.fingerprint,
    target = EXCLUDED.target, object_key = EXCLUDED.object_key, width = EXCLUDED.width,
    height = EXCLUDED.height, bytes = EXCLUDED.bytes, created_at = now(), deleting_since = NULL,
    damaged = NULL

-- name: record_placeholders
INSERT INTO {schema}.placeholders AS h
    (source_set, source_key, fingerprint, version, width, height, blurhash, color, lqip)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[],
                     $6::integer[], $7::text[], $8::text[], $9::text[])
ON CONFLICT (source_set, source_key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, version = EXCLUDED.version, width = EXCLUDED.width,
    height = EXCLUDED.height, blurhash = EXCLUDED.blurhash, color = EXCLUDED.color,
    lqip = EXCLUDED.lqip, created_at = now()

-- name: clear_failures
DELETE FROM {schema}.failures AS f
USING unnest($1::text[], $2::text[]) AS done(source_set, source_key)
WHERE f.source_set = done.source_set AND f.source_key = done.source_key

-- name: record_failures
INSERT INTO {schema}.failures AS f
    (source_set, source_key, fingerprint, error_class, message, permanent, run_id)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[],
                     $7::bigint[])
ON CONFLICT (source_set, source_key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint, error_class = EXCLUDED.error_class,
    message = EXCLUDED.message, permanent = EXCLUDED.permanent, run_id = EXCLUDED.run_id,
    attempts = f.attempts + 1, last_seen = now()

-- name: start_run
INSERT INTO {schema}.runs (command, arguments, host, pid, shard, lock_backend_pid)
VALUES ($1, $2::jsonb, $3, $4, $5, $6)
RETURNING id

-- name: recent_runs
-- The latest runs; one still 'running' whose lock connection is gone from the server has died.
SELECT r.id, r.command, r.arguments, r.shard, r.host, r.pid, r.started_at, r.finished_at,
       r.counts, r.outcome,
       CASE WHEN r.finished_at IS NULL AND r.outcome = 'running'
             AND NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a WHERE a.pid = r.lock_backend_pid)
            THEN 'died' ELSE r.outcome END AS state
FROM {schema}.runs AS r
ORDER BY r.started_at DESC, r.id DESC
LIMIT $1

-- name: recent_failures
-- The failing sources, most recently seen first ($1: source sets, NULL for all).
SELECT f.source_set, f.source_key, f.error_class, f.message, f.permanent, f.attempts,
       f.first_seen, f.last_seen, f.run_id
FROM {schema}.failures AS f
WHERE $1::text[] IS NULL OR f.source_set = ANY($1::text[])
ORDER BY f.last_seen DESC, f.source_set, f.source_key
LIMIT $2

-- name: try_run_lock
SELECT pg_try_advisory_lock(hashtextextended($1, 0))

-- name: wait_run_lock
SELECT pg_advisory_lock(hashtextextended($1, 0))

-- name: plan_shard
-- Keep in a purge's plan only the objects of one shard ($1 count, $2 index): by source key
-- where the row has one, by object key for objects found by listing.
DELETE FROM batchthumb_purge_plan
WHERE mod(mod(hashtextextended(coalesce(source_key, object_key), 0), $1) + $1, $1) <> $2

-- name: finish_run
UPDATE {schema}.runs SET finished_at = now(), counts = $2::jsonb, outcome = $3 WHERE id = $1

-- name: plan_create
-- A purge's plan: what it will delete, materialised once per run in a session temp table,
-- so that the count checked against --max-delete is exactly what the deletes then read.
-- Beside it, a listing of a store (verify, adopt, missing sources, object fingerprints),
-- so that a listing is compared with the registry or a table in SQL, not in memory.
CREATE TEMP TABLE IF NOT EXISTS batchthumb_purge_plan (
    source_set  text,          -- NULL for objects found by listing the store
    source_key  text,
    rendition   text,
    object_key  text   NOT NULL,  -- '' for a row of `purge uploads --delete-rows` without a file
    bytes       bigint NOT NULL,
    row_key     text,          -- `purge uploads --delete-rows`: the row to delete after its file
    shared      boolean NOT NULL DEFAULT false  -- a row outside the plan references its object
);
TRUNCATE batchthumb_purge_plan;
CREATE TEMP TABLE IF NOT EXISTS batchthumb_listing (
    object_key  text   NOT NULL,
    bytes       bigint NOT NULL,
    fingerprint text   NOT NULL
);
TRUNCATE batchthumb_listing

-- name: plan_drop
DROP TABLE IF EXISTS batchthumb_purge_plan;
DROP TABLE IF EXISTS batchthumb_listing;
DROP TABLE IF EXISTS batchthumb_found

-- name: listing_truncate
TRUNCATE batchthumb_listing

-- name: listing_analyze
-- Temp tables are never analysed by autovacuum: the joins with a listing need its statistics.
ANALYZE batchthumb_listing

-- name: plan_referenced
-- `purge referenced`: $1 target, $2 source sets (empty: all), $3 renditions (empty: all; a
-- width set's name takes its variants, 'hero' takes 'hero@640w.webp'),
-- $4 source keys (NULL: all), $5 only unconfigured renditions, $6 configured 'set/rendition' pairs.
INSERT INTO batchthumb_purge_plan
SELECT r.source_set, r.source_key, r.rendition, r.object_key, r.bytes
FROM {schema}.renditions AS r
WHERE r.target = $1
  AND (cardinality($2::text[]) = 0 OR r.source_set = ANY($2::text[]))
  AND (cardinality($3::text[]) = 0 OR split_part(r.rendition, '@', 1) = ANY($3::text[])
       OR r.rendition = ANY($3::text[]))
  AND ($4::text[] IS NULL OR r.source_key = ANY($4::text[]))
  AND (NOT $5 OR NOT (r.source_set || '/' || r.rendition = ANY($6::text[])))

-- name: plan_orphan_rows
-- `purge orphans` (a): rows of one source set and target whose source row is gone from the table.
INSERT INTO batchthumb_purge_plan
SELECT r.source_set, r.source_key, r.rendition, r.object_key, r.bytes
FROM {schema}.renditions AS r
WHERE r.source_set = $1 AND r.target = $2
  AND NOT EXISTS (SELECT 1 FROM {table} AS t WHERE t.{path_column}::text = r.source_key)

-- name: plan_missing_sources
-- `purge orphans --missing-sources`: rows of source set $1 in target $2 whose source key lies
-- under the listed prefix $3 but is not in the listing of the source store, recorded before
-- the listing began ($4), and whose source row is still there (a gone row is plan_orphan_rows').
-- Returns how many sources are missing.
WITH planned AS (
    INSERT INTO batchthumb_purge_plan
    SELECT r.source_set, r.source_key, r.rendition, r.object_key, r.bytes
    FROM {schema}.renditions AS r
    WHERE r.source_set = $1 AND r.target = $2 AND starts_with(r.source_key, $3) AND r.created_at < $4
      AND NOT EXISTS (SELECT 1 FROM batchthumb_listing AS l WHERE l.object_key = r.source_key)
      AND EXISTS (SELECT 1 FROM {table} AS t WHERE t.{path_column}::text = r.source_key)
    RETURNING source_key
)
SELECT count(DISTINCT source_key) FROM planned

-- name: plan_shared
-- The planned rows of target $1 whose object a row outside the plan also references (the
-- variants of a width set share the object of the width they collapse into): the row goes,
-- the object stays. Objects found by listing take every row that names them.
UPDATE batchthumb_purge_plan AS p SET shared = true
WHERE p.source_set IS NOT NULL
  AND EXISTS (SELECT 1 FROM {schema}.renditions AS r
              WHERE r.target = $1 AND r.object_key = p.object_key AND r.deleting_since IS NULL
                AND NOT EXISTS (SELECT 1 FROM batchthumb_purge_plan AS q
                                WHERE q.source_set = r.source_set AND q.source_key = r.source_key
                                  AND q.rendition = r.rendition))

-- name: plan_summary
-- Objects, not rows: an object two planned rows share counts once; one a row outside the plan
-- shares, not at all (it stays).
SELECT count(*) AS objects, coalesce(sum(bytes), 0)::bigint AS bytes
FROM (SELECT DISTINCT ON (object_key) object_key, bytes FROM batchthumb_purge_plan
      WHERE NOT shared) AS objects

-- name: listing_sizes
-- `adopt`: which of these object keys ($1) the listing holds, and their sizes.
SELECT object_key, bytes FROM batchthumb_listing WHERE object_key = ANY($1::text[])

-- name: plan_rows
SELECT source_set, source_key, rendition, object_key, bytes, row_key, shared
FROM batchthumb_purge_plan ORDER BY object_key, row_key

-- name: referenced_object_keys
-- Which of these object keys the registry references in this target (one query per listing page).
SELECT object_key FROM {schema}.renditions WHERE target = $1 AND object_key = ANY($2::text[])

-- name: shared_object_keys
-- Which of these object keys ($2, target $1) a row not marked for deletion references: a purge
-- batch, once marked, keeps the objects that rows outside it share, and removes only its rows.
SELECT DISTINCT object_key FROM {schema}.renditions
WHERE target = $1 AND object_key = ANY($2::text[]) AND deleting_since IS NULL

-- name: mark_deleting_rows
-- A purge batch, before its objects are deleted: the rows by key ($1 source sets, $2 source
-- keys, $3 renditions) are marked, so a crash before they are removed leaves no trusted row.
UPDATE {schema}.renditions AS r SET deleting_since = now()
FROM unnest($1::text[], $2::text[], $3::text[]) AS gone(source_set, source_key, rendition)
WHERE r.source_set = gone.source_set AND r.source_key = gone.source_key
  AND r.rendition = gone.rendition

-- name: mark_deleting_object_keys
-- The same for objects found by listing: $1 target, $2 object keys.
UPDATE {schema}.renditions SET deleting_since = now() WHERE target = $1 AND object_key = ANY($2::text[])

-- name: unmark_deleting
-- The objects a delete could not remove ($2, in target $1) are still there: trusted again.
UPDATE {schema}.renditions SET deleting_since = NULL WHERE target = $1 AND object_key = ANY($2::text[])

-- name: unrecord_rows
DELETE FROM {schema}.renditions AS r
USING unnest($1::text[], $2::text[], $3::text[]) AS gone(source_set, source_key, rendition)
WHERE r.source_set = gone.source_set AND r.source_key = gone.source_key
  AND r.rendition = gone.rendition

-- name: unrecord_object_keys
DELETE FROM {schema}.renditions WHERE target = $1 AND object_key = ANY($2::text[])

-- name: unrecord_target_except
-- What is left of a target after a prefix purge, but for the rows whose objects could not be deleted.
DELETE FROM {schema}.renditions WHERE target = $1 AND NOT (object_key = ANY($2::text[]))

-- name: count_rows
-- `clear --dry-run`. $1 target, $2 source sets (empty: all), $3 renditions (empty: all).
SELECT count(*) FROM {schema}.renditions AS r
WHERE r.target = $1
  AND (cardinality($2::text[]) = 0 OR r.source_set = ANY($2::text[]))
  AND (cardinality($3::text[]) = 0 OR split_part(r.rendition, '@', 1) = ANY($3::text[])
       OR r.rendition = ANY($3::text[]))

-- name: clear_rows
-- `clear`: registry rows only, objects untouched. Parameters as count_rows.
DELETE FROM {schema}.renditions AS r
WHERE r.target = $1
  AND (cardinality($2::text[]) = 0 OR r.source_set = ANY($2::text[]))
  AND (cardinality($3::text[]) = 0 OR split_part(r.rendition, '@', 1) = ANY($3::text[])
       OR r.rendition = ANY($3::text[]))

-- name: clear_rows_batch
-- `clear --library-rows`: up to $4 rows at a time (parameters as count_rows), returning what
-- the library's rows are keyed by.
DELETE FROM {schema}.renditions
WHERE ctid = ANY(ARRAY(
    SELECT r.ctid FROM {schema}.renditions AS r
    WHERE r.target = $1
      AND (cardinality($2::text[]) = 0 OR r.source_set = ANY($2::text[]))
      AND (cardinality($3::text[]) = 0 OR split_part(r.rendition, '@', 1) = ANY($3::text[])
       OR r.rendition = ANY($3::text[]))
    LIMIT $4))
RETURNING object_key, source_key

-- name: referenced_source_keys
-- Which of these names ($1) a row of this source table references as its file: a drop-in
-- rendition must never be written or deleted under such a name.
SELECT t.{path_column}::text FROM {table} AS t WHERE t.{path_column}::text = ANY($1::text[])

-- name: sources_by_stem
-- `purge orphans`, a library that keeps no metadata (imagekit names a thumbnail by its source's
-- path less its extension): which of these ($1) a row of this table holds, less its extension.
SELECT DISTINCT regexp_replace(t.{path_column}::text, '\.[^./]*$', '') FROM {table} AS t
WHERE regexp_replace(t.{path_column}::text, '\.[^./]*$', '') = ANY($1::text[])

-- name: sources_by_compact_name
-- The same for versatileimagefield, whose names drop every space of the source's path.
SELECT DISTINCT replace(t.{path_column}::text, ' ', '') FROM {table} AS t
WHERE replace(t.{path_column}::text, ' ', '') = ANY($1::text[])

-- name: column_type
-- A column's type, its length limit (NULL: unlimited) and whether it takes NULL: $1 schema,
-- $2 table, $3 column.
SELECT format_type(a.atttypid, a.atttypmod) AS type,
       CASE WHEN a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype) AND a.atttypmod > 4
            THEN a.atttypmod - 4 END AS max_length,
       NOT a.attnotnull AS nullable,
       t.typcategory = 'S' AS textual
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped

-- name: write_back
-- Fill a rendition's column: $1 row keys (as text, cast to the key's type), $2 names,
-- $3 the name batchthumb wrote there before (NULL: none), $4 overwrite whatever is there.
-- Only an empty column, or one holding a name batchthumb wrote, is changed.
UPDATE {table} AS t SET {column} = u.name
FROM unnest($1::text[], $2::text[], $3::text[]) AS u(row_key, name, previous)
WHERE t.{key_column} = CAST(u.row_key AS {key_type})
  AND (t.{column} IS NULL OR t.{column} = '' OR t.{column} = u.name
       OR t.{column} = u.previous OR $4)
RETURNING t.{key_column}::text

-- name: write_placeholders
-- A source set's placeholder columns ({assignments}: column = u.blurhash, ...): $1 row keys
-- (as text, cast to the key's type), $2 BlurHashes, $3 colours, $4 LQIPs.
UPDATE {table} AS t SET {assignments}
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(row_key, blurhash, color, lqip)
WHERE t.{key_column} = CAST(u.row_key AS {key_type})

-- name: clear_column
-- After a purge deleted these objects ($1 names): empty the column where it holds one of them.
UPDATE {table} AS t SET {column} = {empty} WHERE t.{column} = ANY($1::text[])

-- name: sorl_set_images
-- sorl-thumbnail's image rows ($1 keys, $2 JSON values): the size batchthumb measured wins.
INSERT INTO {table} AS kv ({key}, value)
SELECT k, v FROM unnest($1::text[], $2::text[]) AS u(k, v)
ON CONFLICT ({key}) DO UPDATE SET value = EXCLUDED.value

-- name: sorl_add_thumbnails
-- A source's list of thumbnail keys ($1 list keys, $2 JSON lists): merged, never overwritten.
INSERT INTO {table} AS kv ({key}, value)
SELECT k, v FROM unnest($1::text[], $2::text[]) AS u(k, v)
ON CONFLICT ({key}) DO UPDATE SET value = (
    SELECT coalesce(json_agg(t.k ORDER BY t.k), '[]')::text
    FROM (SELECT jsonb_array_elements_text(coalesce({schema}.json_list(kv.value), '[]'))
          UNION SELECT jsonb_array_elements_text(EXCLUDED.value::jsonb)) AS t(k))

-- name: sorl_delete_keys
-- Rows by key ($1): the thumbnails' image rows, before their objects go (sorl's order).
DELETE FROM {table} WHERE {key} = ANY($1::text[])

-- name: sorl_remove_thumbnails
-- Take thumbnail keys ($2) out of the lists ($3: the lists' key prefix, for LIKE) of these
-- sources ($1; NULL: of every source whose list holds one, for objects of unknown source).
UPDATE {table} AS kv SET value = (
    SELECT coalesce(json_agg(t.k ORDER BY t.k), '[]')::text
    FROM jsonb_array_elements_text({schema}.json_list(kv.value)) AS t(k) WHERE t.k <> ALL($2::text[]))
WHERE kv.{key} LIKE $3 AND ($1::text[] IS NULL OR kv.{key} = ANY($1::text[]))
  AND {schema}.json_list(kv.value) ?| $2::text[]
RETURNING kv.{key}

-- name: sorl_drop_empty_lists
-- Lists left empty go, as sorl's own cleanup does ($1 their keys; NULL: any under $2).
DELETE FROM {table} AS kv
WHERE kv.{key} LIKE $2 AND ($1::text[] IS NULL OR kv.{key} = ANY($1::text[])) AND kv.value = '[]'
RETURNING kv.{key}

-- name: sorl_find
-- Adopt: the image rows of these keys ($1): what sorl already knows of thumbnails.
SELECT kv.{key} AS key, kv.value FROM {table} AS kv WHERE kv.{key} = ANY($1::text[])

-- name: sorl_in_use
-- `purge orphans`: which of these thumbnails ($1 names, $2 their image keys) sorl's rows know
-- (an image row under $3, the image rows' key prefix), each with the value of the source image
-- row whose list (a key under $4, the lists' prefix) holds it; NULL where no list does. The
-- lists are read once per call, only when sorl knows one of the names.
WITH known AS (
    SELECT u.name, u.image_key
    FROM unnest($1::text[], $2::text[]) AS u(name, image_key)
    JOIN {table} AS kv ON kv.{key} = $3 || u.image_key
), holders AS (
    SELECT t.k AS image_key, substr(l.{key}, length($4) + 1) AS source_key
    FROM {table} AS l, jsonb_array_elements_text({schema}.json_list(l.value)) AS t(k)
    WHERE EXISTS (SELECT 1 FROM known) AND l.{key} LIKE $4 || '%'
      AND {schema}.json_list(l.value) ?| (SELECT array_agg(image_key) FROM known)
)
SELECT k.name, src.value AS source
FROM known AS k
LEFT JOIN holders AS h ON h.image_key = k.image_key
LEFT JOIN {table} AS src ON src.{key} = $3 || h.source_key

-- name: easy_in_use
-- `purge orphans`: which of these thumbnails ($1 storage hash, $2 names) easy-thumbnails'
-- rows know, with their source's name.
SELECT t.name, s.name AS source
FROM {thumbnails} AS t JOIN {sources} AS s ON s.id = t.source_id
WHERE t.storage_hash = $1 AND t.name = ANY($2::text[])

-- name: easy_add_sources
-- easy-thumbnails' source rows ($1 storage hash, $2 names, $3 when each was read): added where
-- missing. An existing row keeps its modified: moving it would make the site's own thumbnails
-- of it stale.
INSERT INTO {sources} (storage_hash, name, modified)
SELECT $1, u.name, u.read_at FROM unnest($2::text[], $3::timestamptz[]) AS u(name, read_at)
ON CONFLICT (storage_hash, name) DO NOTHING

-- name: easy_set_thumbnails
-- Thumbnail rows ($1 storage hash, $2 names, $3 their sources, $4 the sources' storage hash),
-- modified when the source version they show was read ($5): current to the site while the
-- source's row is not newer, stale once the site has moved it (a replaced source).
INSERT INTO {thumbnails} (storage_hash, name, modified, source_id)
SELECT $1, u.name, u.read_at, s.id
FROM unnest($2::text[], $3::text[], $5::timestamptz[]) AS u(name, source, read_at)
JOIN {sources} AS s ON s.storage_hash = $4 AND s.name = u.source
ON CONFLICT (storage_hash, name, source_id) DO UPDATE SET modified = EXCLUDED.modified

-- name: easy_set_dimensions
-- Their sizes as written ($5 widths, $6 heights): a row added when the site caches dimensions
-- ($7), and an existing row corrected either way (the site reads one whenever it is there).
INSERT INTO {dimensions} AS d (thumbnail_id, width, height)
SELECT t.id, u.width, u.height
FROM unnest($2::text[], $3::text[], $5::int[], $6::int[]) AS u(name, source, width, height)
JOIN {sources} AS s ON s.storage_hash = $4 AND s.name = u.source
JOIN {thumbnails} AS t ON t.storage_hash = $1 AND t.name = u.name AND t.source_id = s.id
WHERE $7 OR EXISTS (SELECT 1 FROM {dimensions} AS e WHERE e.thumbnail_id = t.id)
ON CONFLICT (thumbnail_id) DO UPDATE SET width = EXCLUDED.width, height = EXCLUDED.height

-- name: easy_forget
-- Deleted thumbnails ($1 storage hash, $2 names): their dimensions, their rows, and the source
-- rows they leave without a thumbnail (what easy-thumbnails' thumbnail_cleanup would remove).
WITH doomed AS (
    SELECT t.id, t.source_id FROM {thumbnails} AS t WHERE t.storage_hash = $1 AND t.name = ANY($2::text[])
), dimensions AS (
    DELETE FROM {dimensions} WHERE thumbnail_id IN (SELECT id FROM doomed)
), thumbnails AS (
    DELETE FROM {thumbnails} WHERE id IN (SELECT id FROM doomed) RETURNING source_id
)
DELETE FROM {sources} AS s
WHERE s.id IN (SELECT source_id FROM thumbnails)
  AND NOT EXISTS (
      SELECT 1 FROM {thumbnails} AS t WHERE t.source_id = s.id AND t.id NOT IN (SELECT id FROM doomed))

-- name: easy_current
-- Adopt: these thumbnails ($2 names, $3 their sources): whether their rows say current (a row
-- not older than its source's; NULL: no rows), and the dimensions easy-thumbnails cached.
SELECT u.name, t.modified >= s.modified AS current, d.width, d.height
FROM unnest($2::text[], $3::text[]) AS u(name, source)
LEFT JOIN {sources} AS s ON s.storage_hash = $4 AND s.name = u.source
LEFT JOIN {thumbnails} AS t ON t.storage_hash = $1 AND t.name = u.name AND t.source_id = s.id
LEFT JOIN {dimensions} AS d ON d.thumbnail_id = t.id

-- name: database_now
SELECT now()

-- name: verify_found_create
-- `verify`'s findings: registry rows with what the listing says of their object.
CREATE TEMP TABLE IF NOT EXISTS batchthumb_found (
    source_set   text        NOT NULL,
    source_key   text        NOT NULL,
    rendition    text        NOT NULL,
    object_key   text        NOT NULL,
    bytes        bigint      NOT NULL,
    listed_bytes bigint,                 -- NULL: not listed
    created_at   timestamptz NOT NULL,
    verdict      text        NOT NULL    -- 'missing', 'size', or 'whole' (marked before, whole now)
);
TRUNCATE batchthumb_found

-- name: verify_compare
-- The registry rows of target $1 (source sets $2, renditions $3; empty: all) recorded before
-- the listing began ($4), of one shard ($5 count, $6 index), anti-joined with the listing:
-- those whose object it lacks or lists with another size go into batchthumb_found, with the
-- rows marked before whose object is listed whole again. Rows a purge is deleting are its
-- business. Returns how many rows were compared.
WITH scope AS (
    SELECT r.source_set, r.source_key, r.rendition, r.object_key, r.bytes, r.created_at,
           r.damaged, l.bytes AS listed_bytes
    FROM {schema}.renditions AS r
    LEFT JOIN batchthumb_listing AS l ON l.object_key = r.object_key
    WHERE r.target = $1
      AND (cardinality($2::text[]) = 0 OR r.source_set = ANY($2::text[]))
      AND (cardinality($3::text[]) = 0 OR split_part(r.rendition, '@', 1) = ANY($3::text[])
       OR r.rendition = ANY($3::text[]))
      AND r.created_at < $4 AND r.deleting_since IS NULL
      AND ($5 = 1 OR mod(mod(hashtextextended(r.source_key, 0), $5) + $5, $5) = $6)
), found AS (
    INSERT INTO batchthumb_found
    SELECT source_set, source_key, rendition, object_key, bytes, listed_bytes, created_at,
           CASE WHEN listed_bytes IS NULL THEN 'missing'
                WHEN listed_bytes <> bytes THEN 'size' ELSE 'whole' END
    FROM scope
    WHERE listed_bytes IS DISTINCT FROM bytes OR damaged IS NOT NULL
)
SELECT count(*) FROM scope

-- name: verify_findings
-- What verify found, for its report (no 'whole' rows).
SELECT source_set, source_key, rendition, object_key, bytes, listed_bytes, verdict
FROM batchthumb_found WHERE verdict <> 'whole' ORDER BY object_key

-- name: verify_mark
-- Mark the rows found ('missing', 'size'; NULL for 'whole' ones: trusted again), unless
-- recorded again since they were compared ($1 the target). How many of each.
WITH marked AS (
    UPDATE {schema}.renditions AS r
    SET damaged = CASE WHEN f.verdict = 'whole' THEN NULL ELSE f.verdict END
    FROM batchthumb_found AS f
    WHERE r.source_set = f.source_set AND r.source_key = f.source_key AND r.rendition = f.rendition
      AND r.target = $1 AND r.created_at = f.created_at AND r.deleting_since IS NULL
    RETURNING f.verdict
)
SELECT count(*) FILTER (WHERE verdict <> 'whole') AS marked,
       count(*) FILTER (WHERE verdict = 'whole') AS trusted
FROM marked

-- name: verify_counts
-- The findings by verdict, and the listed objects that no registry row of target $1
-- references (purge orphans' business: counted, not touched).
SELECT count(*) FILTER (WHERE verdict = 'missing') AS missing,
       count(*) FILTER (WHERE verdict = 'size') AS wrong_size,
       count(*) FILTER (WHERE verdict = 'whole') AS whole_again,
       (SELECT count(*) FROM batchthumb_listing AS l
        WHERE NOT EXISTS (SELECT 1 FROM {schema}.renditions AS r
                          WHERE r.target = $1 AND r.object_key = l.object_key)) AS unreferenced
FROM batchthumb_found

-- name: source_objects_merge
-- Object fingerprints: the listing of source set $1's prefix ($2) merged into source_objects,
-- for one shard ($3 count, $4 index): changed fingerprints updated, new objects added, those
-- no longer listed removed. How many changed and how many went.
WITH listed AS (
    SELECT object_key, fingerprint FROM batchthumb_listing
    WHERE $3 = 1 OR mod(mod(hashtextextended(object_key, 0), $3) + $3, $3) = $4
), changed AS (
    INSERT INTO {schema}.source_objects AS o (source_set, source_key, fingerprint)
    SELECT $1, object_key, fingerprint FROM listed
    ON CONFLICT (source_set, source_key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, listed_at = now()
    WHERE o.fingerprint <> EXCLUDED.fingerprint
    RETURNING 1
), gone AS (
    DELETE FROM {schema}.source_objects AS o
    WHERE o.source_set = $1 AND starts_with(o.source_key, $2)
      AND ($3 = 1 OR mod(mod(hashtextextended(o.source_key, 0), $3) + $3, $3) = $4)
      AND NOT EXISTS (SELECT 1 FROM listed AS l WHERE l.object_key = o.source_key)
    RETURNING 1
)
SELECT (SELECT count(*) FROM changed) AS changed, (SELECT count(*) FROM gone) AS gone

-- name: file_references
-- `purge uploads`: which of these names ($1) a row of {table} holds in {column}.
SELECT t.{column}::text FROM {table} AS t WHERE t.{column}::text = ANY($1::text[])

-- name: file_references_except_rows
-- `purge uploads --delete-rows`: which of these names ($1) a row of the source table other than
-- those about to be deleted ($2, keys as text) holds as its file.
SELECT t.{path_column}::text FROM {table} AS t
WHERE t.{path_column}::text = ANY($1::text[]) AND NOT (t.{key_column} = ANY(CAST($2::text[] AS {key_type}[])))

-- name: plan_upload_rows
-- `purge uploads --delete-rows`: the rows of the source table matching the operator's
-- condition, older than $1 seconds by {age_column}, with a file under the upload prefix ($2)
-- or none; their files' sizes from the listing of the prefix (0: not there).
INSERT INTO batchthumb_purge_plan (object_key, bytes, row_key)
SELECT coalesce(t.{path_column}::text, ''), coalesce(l.bytes, 0), t.{key_column}::text
FROM {table} AS t
LEFT JOIN batchthumb_listing AS l ON l.object_key = t.{path_column}::text
WHERE ({where}) AND t.{age_column} < now() - make_interval(secs => $1)
  AND (coalesce(t.{path_column}::text, '') = '' OR starts_with(t.{path_column}::text, $2))

-- name: upload_rows_recheck
-- Of these rows ($2, keys as text), those that still match, just before their files go.
SELECT t.{key_column}::text AS row_key, coalesce(t.{path_column}::text, '') AS path
FROM {table} AS t
WHERE t.{key_column} = ANY(CAST($2::text[] AS {key_type}[]))
  AND ({where}) AND t.{age_column} < now() - make_interval(secs => $1)

-- name: upload_rows_delete
-- The rows themselves, last, re-checked once more (parameters as upload_rows_recheck).
DELETE FROM {table} AS t
WHERE t.{key_column} = ANY(CAST($2::text[] AS {key_type}[]))
  AND ({where}) AND t.{age_column} < now() - make_interval(secs => $1)

-- name: renditions_of_sources
-- The registry rows of target $1 made from these source keys ($2), in any source set.
SELECT source_set, source_key, rendition, object_key, bytes
FROM {schema}.renditions WHERE target = $1 AND source_key = ANY($2::text[])

-- name: wagtail_rendition_columns
-- The rendition table's columns: which a row must give (NOT NULL, no default), their type, the file's length.
SELECT column_name AS name,
       (is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO') AS required,
       data_type AS type,
       character_maximum_length AS length
FROM information_schema.columns
WHERE table_schema = $1 AND table_name = $2

-- name: wagtail_holders
-- The rows that hold these names ($1), whoever wrote them.
SELECT file, image_id, filter_spec, focal_point_key AS key FROM {table} WHERE file = ANY($1::text[])

-- name: wagtail_update_ours
-- Rows of ours whose rendition moved to a new name, or was rebuilt in place ($7: the name we wrote before).
UPDATE {table} AS r SET file = u.file, width = u.width, height = u.height
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[])
    AS u(image_id, spec, key, file, width, height, replaces)
WHERE r.image_id = u.image_id AND r.filter_spec = u.spec AND r.focal_point_key = u.key
  AND (r.file = u.replaces OR r.file = u.file)
RETURNING r.file

-- name: wagtail_insert
-- New rows, after their objects: a row the site wrote first stands (Wagtail's unique key).
INSERT INTO {table} (image_id, filter_spec, focal_point_key, file, width, height{extra_names})
SELECT u.image_id, u.spec, u.key, u.file, u.width, u.height{extra_values}
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[])
    AS u(image_id, spec, key, file, width, height)
ON CONFLICT (image_id, filter_spec, focal_point_key) DO NOTHING
RETURNING file

-- name: wagtail_standing
-- The name each of these renditions' rows holds now.
SELECT r.image_id, r.filter_spec, r.focal_point_key AS key, r.file
FROM {table} AS r
JOIN unnest($1::bigint[], $2::text[], $3::text[]) AS u(image_id, spec, key)
  ON r.image_id = u.image_id AND r.filter_spec = u.spec AND r.focal_point_key = u.key

-- name: wagtail_delete
-- The rows naming objects a purge deleted, with what their renditions-cache keys are made of.
DELETE FROM {table} AS r WHERE r.file = ANY($1::text[])
RETURNING r.image_id, (SELECT i.file_hash FROM {image_table} AS i WHERE i.id = r.image_id) AS file_hash,
    r.focal_point_key, r.filter_spec

-- name: wagtail_in_use
-- Of these names, those a rendition row holds, with its image's file.
SELECT r.file, i.file AS source
FROM {table} AS r JOIN {image_table} AS i ON i.id = r.image_id
WHERE r.file = ANY($1::text[])

-- name: wagtail_sizes
-- Of these names, those a rendition row holds, with the size it says (adopt).
SELECT file, width, height FROM {table} WHERE file = ANY($1::text[]) AND width > 0 AND height > 0
