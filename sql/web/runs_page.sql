-- One page of runs, newest first, by keyset: runs with id below $1 (NULL: from the newest).
-- Filters, each NULL for any: $2 project, $3 job name, $4 status, $5 host, $6 trigger,
-- $7 scheduled at or after, $8 scheduled before; $9 the page size. Each filter is its own
-- branch of the plan's WHERE only when given, so the planner can use `runs_by_job` or the
-- primary key and stop after a page.
SELECT r.id, j.project || '/' || j.name AS job, r.status::text AS status, r.summary, r.attempt,
       r.host, r.exit_code, r.scheduled_for, r.started_at, r.finished_at, r.slot,
       r.trigger::text AS trigger, r.target_host, r.error, r.rerun_of, r.params,
       r.yielded_to
  FROM sisyphus.runs r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE r.id < coalesce($1::bigint, 9223372036854775807)
   AND ($2::text IS NULL OR j.project = $2)
   AND ($3::text IS NULL OR j.name = $3)
   AND ($4::text IS NULL OR r.status = $4::sisyphus.run_status)
   AND ($5::text IS NULL OR r.host = $5)
   AND ($6::text IS NULL OR r.trigger = $6::sisyphus.run_trigger)
   AND ($7::timestamptz IS NULL OR r.scheduled_for >= $7)
   AND ($8::timestamptz IS NULL OR r.scheduled_for < $8)
 ORDER BY r.id DESC
 LIMIT $9
