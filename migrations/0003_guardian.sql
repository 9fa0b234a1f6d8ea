-- Guardian support: per-job process and log settings, claims with fleet-wide concurrency, outcomes
-- with retries in the same transaction, remote control requests.

ALTER TABLE sisyphus.jobs
    ADD COLUMN run_as        text,
    ADD COLUMN keep_logs     interval,
    ADD COLUMN compress_logs interval,
    ADD COLUMN compress_mode text NOT NULL DEFAULT 'bzip2' CHECK (compress_mode IN ('gzip', 'bzip2', 'xz'));

ALTER TABLE sisyphus.hosts
    ADD COLUMN instance text;

-- A guardian's own runs, and its outstanding control requests.
CREATE INDEX runs_on_host ON sisyphus.runs (host) WHERE status IN ('running', 'suspended');

-- Records how a run ended, if it is still in one of `p_from` (compare-and-set: a transition that
-- loses a race changes nothing and returns false). A failed, timed-out or lost run with attempts
-- left gets its next attempt in the same transaction, after retry_backoff × 2^(attempt-1)
-- (at most an hour).
CREATE FUNCTION sisyphus.finish_run(
    p_run bigint, p_from sisyphus.run_status[], p_status sisyphus.run_status,
    p_exit integer, p_signal integer, p_summary text, p_error text, p_finished timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    r sisyphus.runs;
    j sisyphus.jobs;
    delay interval;
    t timestamptz := clock_timestamp();
BEGIN
    UPDATE sisyphus.runs
       SET status = p_status, exit_code = p_exit, signal = p_signal, summary = p_summary,
           error = p_error, finished_at = coalesce(p_finished, t), requested = NULL,
           lease_expires_at = NULL
     WHERE id = p_run AND status = ANY (p_from)
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_status IN ('failed', 'timeout', 'lost') THEN
        SELECT * INTO j FROM sisyphus.jobs WHERE id = r.job_id;
        IF r.attempt <= j.retries THEN
            delay := least(j.retry_backoff * power(2, r.attempt - 1), interval '1 hour');
            INSERT INTO sisyphus.runs (job_id, slot, attempt, target_host, trigger, scheduled_for,
                                       expires_at, created_by)
            VALUES (r.job_id, r.slot, r.attempt + 1, r.target_host, 'retry', t + delay,
                    t + delay + j.ttl, 'retry of run ' || r.id)
            ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    -- A run of this job may be waiting for the slot this one frees (or a retry was just added):
    -- wake the guardians.
    IF EXISTS (SELECT 1 FROM sisyphus.runs p WHERE p.job_id = r.job_id AND p.status = 'pending') THEN
        PERFORM pg_notify('sisyphus_runs', '');
    END IF;
    RETURN true;
END $$;

-- Claims up to p_limit due runs meant for this host (its own `all` copies, or `any` runs of a
-- pool it is in) and marks them running with a lease, never letting a job exceed its
-- concurrency across the fleet (invariant 2). Claimers of the same job are serialised by a
-- transaction advisory lock per job, taken in job-id order so two guardians cannot deadlock;
-- the count of active runs is read after the lock, so it sees every committed claim.
--
-- It returns the claimed runs with what a guardian needs to start them, read by a statement inside
-- the function: a query joining `runs` around the call would use a snapshot taken before the
-- call, and miss runs committed meanwhile that the function did claim.
CREATE FUNCTION sisyphus.claim_runs(p_host text, p_pools text[], p_limit integer, p_lease interval)
RETURNS TABLE (id bigint, job_id bigint, attempt integer, scheduled_for timestamptz, project text,
               name text, command text[], shell boolean, env jsonb, workdir text, maxtime interval,
               run_as text, userdata jsonb, keep_logs interval, compress_logs interval,
               compress_mode text)
LANGUAGE plpgsql AS $$
DECLARE
    claimed_ids bigint[] := '{}';
    ids bigint[];
    jobs bigint[];
    limits integer[];
    job bigint;
    active integer;
    claimed integer := 0;
BEGIN
    IF p_limit <= 0 OR EXISTS (SELECT 1 FROM sisyphus.hosts h WHERE h.name = p_host AND h.draining) THEN
        RETURN;
    END IF;
    -- Candidates: the oldest due runs for this host, in a bounded window (a huge backlog costs no
    -- more than a small one), at most as many per job as it has free slots by an optimistic count
    -- (checked again under the lock below), so that one job's backlog cannot starve the others;
    -- then locked, skipping runs another guardian is claiming.
    WITH due AS (
        SELECT r.id AS run_id, r.job_id AS run_job, j.concurrency AS job_limit, r.scheduled_for AS due_at
          FROM sisyphus.runs r
          JOIN sisyphus.jobs j ON j.id = r.job_id
         WHERE r.status = 'pending'
           AND r.scheduled_for <= clock_timestamp()
           AND (r.expires_at IS NULL OR r.expires_at > clock_timestamp())
           AND (r.target_host = p_host
                OR (r.target_host IS NULL AND NOT j.target_all
                    AND (j.target_pool IS NULL OR j.target_pool = ANY (p_pools))))
         ORDER BY r.scheduled_for, r.id
         LIMIT 2000),
    busy AS (
        SELECT a.job_id, count(*) AS active
          FROM sisyphus.runs a
         WHERE a.status IN ('running', 'suspended') AND a.job_id IN (SELECT run_job FROM due)
         GROUP BY a.job_id),
    picked AS (
        SELECT d.run_id, d.run_job, d.job_limit, d.due_at
          FROM (SELECT d.*, row_number() OVER (PARTITION BY d.run_job ORDER BY d.due_at, d.run_id) AS nth
                  FROM due d) d
          LEFT JOIN busy b ON b.job_id = d.run_job
         WHERE d.nth <= d.job_limit - coalesce(b.active, 0)
         ORDER BY d.due_at, d.run_id
         LIMIT p_limit * 4),
    locked AS (
        SELECT r.id AS locked_id
          FROM sisyphus.runs r
         WHERE r.id IN (SELECT run_id FROM picked) AND r.status = 'pending'
           FOR UPDATE OF r SKIP LOCKED)
    SELECT array_agg(p.run_id ORDER BY p.due_at, p.run_id), array_agg(p.run_job ORDER BY p.due_at, p.run_id),
           array_agg(p.job_limit ORDER BY p.due_at, p.run_id)
      INTO ids, jobs, limits
      FROM picked p
     WHERE p.run_id IN (SELECT locked_id FROM locked);
    IF ids IS NULL THEN
        RETURN;
    END IF;
    FOR job IN SELECT DISTINCT x FROM unnest(jobs) x ORDER BY x LOOP
        PERFORM pg_advisory_xact_lock(1397313369, (job % 2147483647)::integer);
    END LOOP;
    FOR i IN 1 .. cardinality(ids) LOOP
        EXIT WHEN claimed >= p_limit;
        SELECT count(*) INTO active FROM sisyphus.runs a
         WHERE a.job_id = jobs[i] AND a.status IN ('running', 'suspended');
        CONTINUE WHEN active >= limits[i];
        UPDATE sisyphus.runs r
           SET status = 'running', host = p_host, started_at = clock_timestamp(),
               lease_expires_at = clock_timestamp() + p_lease
         WHERE r.id = ids[i] AND r.status = 'pending';
        IF FOUND THEN
            claimed := claimed + 1;
            claimed_ids := claimed_ids || ids[i];
        END IF;
    END LOOP;
    RETURN QUERY
    SELECT r.id, r.job_id, r.attempt, r.scheduled_for, j.project, j.name, j.command, j.shell, j.env,
           j.workdir, j.maxtime, j.run_as, j.userdata, j.keep_logs, j.compress_logs, j.compress_mode
      FROM sisyphus.runs r
      JOIN sisyphus.jobs j ON j.id = r.job_id
     WHERE r.id = ANY (claimed_ids);
END $$;

-- Remote control. A pending run is cancelled at once; a running or suspended one gets a request
-- its guardian carries out within a second (NOTIFY `sisyphus_control`).
CREATE FUNCTION sisyphus.request_control(p_run bigint, p_action text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r sisyphus.runs;
BEGIN
    SELECT * INTO r FROM sisyphus.runs WHERE id = p_run FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', p_run USING ERRCODE = 'no_data_found';
    END IF;
    IF p_action = 'terminate' AND r.status = 'pending' THEN
        UPDATE sisyphus.runs SET status = 'cancelled', finished_at = clock_timestamp(),
               error = 'terminated before it started'
         WHERE id = p_run;
        RETURN 'cancelled';
    END IF;
    IF (p_action = 'terminate' AND r.status NOT IN ('running', 'suspended'))
       OR (p_action = 'suspend' AND r.status <> 'running')
       OR (p_action = 'resume' AND r.status <> 'suspended') THEN
        RAISE EXCEPTION 'cannot % run %: it is %', p_action, p_run, r.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE sisyphus.runs SET requested = p_action WHERE id = p_run;
    PERFORM pg_notify('sisyphus_control', r.host);
    RETURN 'requested';
END $$;

CREATE FUNCTION sisyphus.terminate(p_run bigint) RETURNS text LANGUAGE sql AS
$$ SELECT sisyphus.request_control(p_run, 'terminate') $$;
CREATE FUNCTION sisyphus.suspend(p_run bigint) RETURNS text LANGUAGE sql AS
$$ SELECT sisyphus.request_control(p_run, 'suspend') $$;
CREATE FUNCTION sisyphus.resume(p_run bigint) RETURNS text LANGUAGE sql AS
$$ SELECT sisyphus.request_control(p_run, 'resume') $$;

-- Stops (or restarts) new claims on a host; its running runs go on.
CREATE FUNCTION sisyphus.drain_host(p_host text, p_drain boolean DEFAULT true) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sisyphus.hosts SET draining = p_drain WHERE name = p_host;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'host % is not registered', p_host USING ERRCODE = 'no_data_found';
    END IF;
    PERFORM pg_notify('sisyphus_control', p_host);
    RETURN true;
END $$;
