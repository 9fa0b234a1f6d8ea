-- Resources written since a watermark (less a minute: a writer's transaction may commit after a
-- later one, with an earlier `now()`) whose names match one of the LIKE patterns.
-- $1 patterns, $2 watermark (NULL: from the start), $3 limit.
SELECT name, written_at
  FROM sisyphus.resources
 WHERE name LIKE ANY ($1)
   AND ($2::timestamptz IS NULL OR written_at > $2 - interval '1 minute')
 ORDER BY written_at
 LIMIT $3
