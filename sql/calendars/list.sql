-- Calendars, by name: every one, or those named in $1 (NULL: all), without their source, with
-- the jobs the caller can see that name them.
SELECT c.name, c.zone, c.format, c.description, c.entries, c.updated_at,
       c.updated_by::text AS updated_by,
       ARRAY(SELECT j.project || '/' || j.name FROM sisyphus.jobs j
              WHERE c.name = ANY (j.skip_on) OR c.name = ANY (j.only_on)
              ORDER BY j.project, j.name) AS used_by
  FROM sisyphus.calendars c
 WHERE $1::text[] IS NULL OR c.name = ANY ($1)
 ORDER BY c.name
