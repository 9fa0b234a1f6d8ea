-- Health for every job in the fleet (issue 6): ll.sisyphus' health check, answered from the runs.
--
-- A job is unhealthy when it has never run, when its last finished run did not succeed (failed,
-- timeout, lost, missed, interrupted, terminated), or when its last good (successful or
-- uneventful) run ended longer ago than the job's `max_health_age`. The reasons use the job
-- SDK's words, so `sisyctl health` and a standalone `--healthcheck` read alike.

ALTER TABLE sisyphus.jobs ADD COLUMN max_health_age interval
    CHECK (max_health_age IS NULL OR max_health_age > interval '0');

-- Why job `p_job` is unhealthy, or NULL when it is healthy.
CREATE FUNCTION sisyphus.health_reason(p_job bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    WITH last AS (
        SELECT r.status, r.finished_at, coalesce(r.error, r.summary, '') AS text
          FROM sisyphus.runs r
         WHERE r.job_id = p_job AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled')
         ORDER BY r.id DESC
         LIMIT 1),
    good AS (
        SELECT r.finished_at
          FROM sisyphus.runs r
         WHERE r.job_id = p_job AND r.status IN ('successful', 'uneventful')
         ORDER BY r.id DESC
         LIMIT 1)
    SELECT CASE
        WHEN l.status IS NULL THEN 'never run'
        WHEN l.status NOT IN ('successful', 'uneventful') THEN
            format('last run %s at %s: %s', l.status,
                   to_char(l.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'), l.text)
        WHEN j.max_health_age IS NOT NULL AND g.finished_at < now() - j.max_health_age THEN
            format('last good run ended %s ago, more than max_health_age %s',
                   date_trunc('second', now() - g.finished_at), j.max_health_age)
        END
      FROM sisyphus.jobs j
      LEFT JOIN last l ON true
      LEFT JOIN good g ON true
     WHERE j.id = p_job
$$;

-- job_status gains `healthy` and `health_reason` (the view is redefined whole: a view's columns
-- can only be added by restating it).
DROP VIEW sisyphus.job_status;
CREATE VIEW sisyphus.job_status AS
SELECT j.id,
       j.project,
       j.name,
       j.project || '/' || j.name AS job,
       CASE WHEN j.cron IS NOT NULL THEN array_to_string(j.cron, ' | ')
            WHEN j.every IS NOT NULL THEN 'every ' || j.every::text
            WHEN j.at IS NOT NULL THEN 'at ' || j.at::text
            ELSE 'manual' END AS schedule,
       j.timezone,
       j.paused,
       j.next_slot AS next_due,
       (SELECT count(*) FROM sisyphus.runs a
         WHERE a.job_id = j.id AND a.status IN ('running', 'suspended')) AS active_runs,
       last.id AS last_run_id,
       last.status AS last_status,
       last.finished_at AS last_finished_at,
       last.summary AS last_summary,
       CASE WHEN j.paused THEN 'paused'
            WHEN last.id IS NULL THEN 'never-run'
            WHEN last.status IN ('successful', 'uneventful') THEN 'ok'
            WHEN last.status = 'missed' THEN 'missed'
            ELSE 'failing' END AS health,
       reason.text IS NULL AS healthy,
       reason.text AS health_reason,
       j.max_health_age
  FROM sisyphus.jobs j
  LEFT JOIN LATERAL (
        SELECT r.id, r.status, r.finished_at, r.summary
          FROM sisyphus.runs r
         WHERE r.job_id = j.id AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled')
         ORDER BY r.id DESC
         LIMIT 1) last ON true
  CROSS JOIN LATERAL (SELECT sisyphus.health_reason(j.id) AS text) reason;
