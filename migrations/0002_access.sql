-- SQL as a first-class interface: views for status, functions for control.
-- `sisyctl` and the Rust client call these same functions, so every interface shares one path.

-- A host is live while its heartbeat is younger than 30 seconds (guardians beat every few seconds).
CREATE VIEW sisyphus.live_hosts AS
SELECT * FROM sisyphus.hosts WHERE last_heartbeat > now() - interval '30 seconds';

CREATE FUNCTION sisyphus.find_job(p_project text, p_name text) RETURNS sisyphus.jobs
LANGUAGE plpgsql STABLE AS $$
DECLARE
    j sisyphus.jobs;
BEGIN
    SELECT * INTO j FROM sisyphus.jobs WHERE project = p_project AND name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job %/% does not exist', p_project, p_name USING ERRCODE = 'no_data_found';
    END IF;
    RETURN j;
END $$;

-- Removes the runs the scheduler materialised ahead of time (not yet due) for a job, and gives
-- their slots back to the schedule's iteration count. They were never due, so nothing is lost.
-- Returns the earliest slot taken back, or NULL.
CREATE FUNCTION sisyphus.take_back_future_runs(p_job bigint) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    first_taken timestamptz;
    taken integer;
BEGIN
    WITH gone AS (
        DELETE FROM sisyphus.runs
         WHERE job_id = p_job AND status = 'pending' AND trigger = 'schedule'
           AND scheduled_for > clock_timestamp()
        RETURNING slot)
    SELECT min(slot), count(DISTINCT slot) INTO first_taken, taken FROM gone;
    UPDATE sisyphus.jobs SET fired = greatest(fired - taken, 0) WHERE id = p_job AND taken > 0;
    RETURN first_taken;
END $$;

-- Runs a job now, outside its schedule (also when paused: an explicit request wins).
-- Returns the new run ids: one, or one per live host of the pool for an `all` job.
CREATE FUNCTION sisyphus.run_now(p_project text, p_name text, p_by text DEFAULT session_user)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs := sisyphus.find_job(p_project, p_name);
    t timestamptz := clock_timestamp();
    n integer;
BEGIN
    RETURN QUERY
    INSERT INTO sisyphus.runs (job_id, slot, scheduled_for, expires_at, target_host, trigger, created_by)
    SELECT j.id, t, t, t + j.ttl, h.name, 'manual', p_by
      FROM (SELECT NULL::text AS name WHERE NOT j.target_all
            UNION ALL
            SELECT lh.name FROM sisyphus.live_hosts lh
             WHERE j.target_all AND NOT lh.draining
               AND (j.target_pool IS NULL OR j.target_pool = ANY (lh.pools))) h
    RETURNING id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'job %/% runs on all hosts%, and no live host is there',
            p_project, p_name, coalesce(' of pool ' || j.target_pool, '')
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pg_notify('sisyphus_runs', '');
END $$;

-- Pauses a job: no new slots; runs already materialised for the future are taken back (the slots
-- return to the schedule and meet the catch-up policy on resume), and due runs nobody has claimed
-- yet are cancelled. Runs already running are not touched. Returns false if it was paused already.
CREATE FUNCTION sisyphus.pause_job(p_project text, p_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs := sisyphus.find_job(p_project, p_name);
    first_taken timestamptz;
BEGIN
    UPDATE sisyphus.jobs SET paused = true, updated_at = now() WHERE id = j.id AND NOT paused;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    first_taken := sisyphus.take_back_future_runs(j.id);
    UPDATE sisyphus.jobs SET next_slot = least(next_slot, first_taken)
     WHERE id = j.id AND first_taken IS NOT NULL;
    UPDATE sisyphus.runs
       SET status = 'cancelled', finished_at = clock_timestamp(), error = 'job paused before the run started'
     WHERE job_id = j.id AND status = 'pending';
    RETURN true;
END $$;

-- Resumes a paused job. Slots that passed while it was paused meet its catch-up policy.
CREATE FUNCTION sisyphus.resume_job(p_project text, p_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs := sisyphus.find_job(p_project, p_name);
BEGIN
    UPDATE sisyphus.jobs SET paused = false, updated_at = now() WHERE id = j.id AND paused;
    RETURN FOUND;
END $$;

-- Removes a job with its history. Refused while a run of it is running or suspended.
-- Returns how many runs were removed with it.
CREATE FUNCTION sisyphus.remove_job(p_project text, p_name text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs := sisyphus.find_job(p_project, p_name);
    active integer;
    n integer;
BEGIN
    PERFORM 1 FROM sisyphus.jobs WHERE id = j.id FOR UPDATE;
    SELECT count(*) INTO active FROM sisyphus.runs
     WHERE job_id = j.id AND status IN ('running', 'suspended');
    IF active > 0 THEN
        RAISE EXCEPTION 'job %/% has % active run(s); terminate them first', p_project, p_name, active
            USING ERRCODE = 'object_in_use';
    END IF;
    SELECT count(*) INTO n FROM sisyphus.runs WHERE job_id = j.id;
    DELETE FROM sisyphus.jobs WHERE id = j.id;
    RETURN n;
END $$;

-- Each job with its schedule, next due time, last finished run and health.
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
            ELSE 'failing' END AS health
  FROM sisyphus.jobs j
  LEFT JOIN LATERAL (
        SELECT r.id, r.status, r.finished_at, r.summary
          FROM sisyphus.runs r
         WHERE r.job_id = j.id AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled')
         ORDER BY r.id DESC
         LIMIT 1) last ON true;

-- Runs of the last day, newest first, with their job's name.
CREATE VIEW sisyphus.recent_runs AS
SELECT r.id, j.project || '/' || j.name AS job, r.status, r.summary, r.attempt, r.host,
       r.exit_code, r.slot, r.scheduled_for, r.started_at, r.finished_at, r.trigger, r.error
  FROM sisyphus.runs r
  JOIN sisyphus.jobs j ON j.id = r.job_id
 WHERE r.created_at > now() - interval '1 day'
 ORDER BY r.id DESC;
