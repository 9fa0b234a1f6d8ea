-- Resources written since a watermark (less a minute: a writer's transaction may commit after a
-- later one, with an earlier `now()`) whose names match one of the LIKE patterns.
-- The bound is one expression (no `$2 IS NULL OR …`), so that a cached plan of this statement
-- still reads `resources_written` instead of every resource.
-- $1 patterns, $2 watermark (NULL: from the start), $3 limit.
SELECT name, written_at
  FROM sisyphus.resources
 WHERE written_at > coalesce($2::timestamptz, '-infinity') - interval '1 minute'
   AND name LIKE ANY ($1)
 ORDER BY written_at
 LIMIT $3
