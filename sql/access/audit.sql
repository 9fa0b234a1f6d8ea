-- The audit log, newest first, as far as the caller may read it: $1 project and $2 job
-- (`PROJECT/NAME`) or NULL — the job's own rows and those of its runs; $3 actor or NULL; $4 only
-- rows at or after this time, or NULL; $5 most rows.
SELECT a.id, a.at, a.actor::text AS actor, a.on_behalf_of, a.channel, a.action, a.project,
       a.target, a.diff, a.reason
  FROM sisyphus.audit a
 WHERE ($1::text IS NULL OR (a.project = $1 AND (a.target = $2 OR a.diff ->> 'job' = $2)))
   AND ($3::text IS NULL OR a.actor = $3::name)
   AND ($4::timestamptz IS NULL OR a.at >= $4)
 ORDER BY a.at DESC, a.id DESC
 LIMIT $5
