-- The grants the caller may see (all of them for admins, their own for others), by login and
-- pattern.
SELECT g.login::text AS login, g.level, g.pattern, g.granted_by::text AS granted_by, g.granted_at
  FROM sisyphus.grants g
 ORDER BY g.login, g.pattern
