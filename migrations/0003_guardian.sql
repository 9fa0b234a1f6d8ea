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
-- Whether a job has runs waiting (to wake guardians when a slot frees).
CREATE INDEX runs_pending_by_job ON sisyphus.runs (job_id) WHERE status = 'pending';

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
    -- Wake the guardians when a run of this job waits for the slot this one frees (the job was at
    -- its concurrency), or a retry was just added. Not otherwise: a NOTIFY per run would cost
    -- every guardian a wake-up and serialise commits.
    IF p_status IN ('failed', 'timeout', 'lost') AND r.attempt <= j.retries THEN
        PERFORM pg_notify('sisyphus_runs', '');
    ELSIF (SELECT count(*) FROM sisyphus.runs a
            WHERE a.job_id = r.job_id AND a.status IN ('running', 'suspended'))
          + 1 >= (SELECT concurrency FROM sisyphus.jobs WHERE id = r.job_id)
      AND EXISTS (SELECT 1 FROM sisyphus.runs p WHERE p.job_id = r.job_id AND p.status = 'pending') THEN
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
    -- Taken once: a variable is a plan parameter, so the partial index on (scheduled_for, id)
    -- serves the ordered scan; `clock_timestamp()` in the predicate would force a full sort.
    t timestamptz := clock_timestamp();
BEGIN
    IF p_limit <= 0 OR EXISTS (SELECT 1 FROM sisyphus.hosts h WHERE h.name = p_host AND h.draining) THEN
        RETURN;
    END IF;
    -- Candidates: from a window of the oldest due runs (an ordered scan of the partial index that
    -- stops early, whatever the backlog), those meant for this host, per job only as many as it
    -- has free slots by an optimistic count (checked again under the lock below) — so a job at its
    -- concurrency does not hide other jobs' runs behind it — locked, skipping runs another
    -- guardian is claiming. Active runs are counted once per job, not once per candidate.
    WITH due AS MATERIALIZED (
        SELECT r.id AS due_id, r.job_id AS due_job, r.target_host AS due_host, r.scheduled_for AS due_time
          FROM sisyphus.runs r
         WHERE r.status = 'pending' AND r.scheduled_for <= t
           AND (r.expires_at IS NULL OR r.expires_at > t)
         ORDER BY r.scheduled_for, r.id
         LIMIT greatest(256, p_limit * 16)),
    mine AS MATERIALIZED (
        SELECT d.due_id AS mine_id, d.due_job AS mine_job, d.due_time AS mine_time,
               j.concurrency AS mine_limit,
               row_number() OVER (PARTITION BY d.due_job ORDER BY d.due_time, d.due_id) AS nth
          FROM due d
          JOIN sisyphus.jobs j ON j.id = d.due_job
         WHERE d.due_host = p_host
            OR (d.due_host IS NULL AND NOT j.target_all
                AND (j.target_pool IS NULL OR j.target_pool = ANY (p_pools)))),
    busy AS MATERIALIZED (
        SELECT a.job_id AS busy_job, count(*) AS n
          FROM sisyphus.runs a
         WHERE a.job_id IN (SELECT mine_job FROM mine) AND a.status IN ('running', 'suspended')
         GROUP BY a.job_id),
    picked AS MATERIALIZED (
        SELECT m.mine_id AS pick_id, m.mine_job AS pick_job, m.mine_limit AS pick_limit, m.mine_time AS pick_time
          FROM mine m
          LEFT JOIN busy b ON b.busy_job = m.mine_job
         WHERE m.nth <= m.mine_limit - coalesce(b.n, 0)
         ORDER BY m.mine_time, m.mine_id
         LIMIT p_limit * 2),
    c AS (
        SELECT r.id AS run_id, p.pick_job AS run_job, p.pick_limit AS job_limit, p.pick_time AS due_at
          FROM sisyphus.runs r
          JOIN picked p ON p.pick_id = r.id
         WHERE r.id = ANY (ARRAY(SELECT pick_id FROM picked)) AND r.status = 'pending'
           FOR UPDATE OF r SKIP LOCKED)
    SELECT array_agg(c.run_id ORDER BY c.due_at, c.run_id), array_agg(c.run_job ORDER BY c.due_at, c.run_id),
           array_agg(c.job_limit ORDER BY c.due_at, c.run_id)
      INTO ids, jobs, limits
      FROM c;
    IF ids IS NULL THEN
        RETURN;
    END IF;
    FOR job IN SELECT DISTINCT x FROM unnest(jobs) x ORDER BY x LOOP
        PERFORM pg_advisory_xact_lock(1397313369, (job % 2147483647)::integer);
    END LOOP;
    -- Under the locks, one statement: count each job's active runs (a fresh snapshot, so every
    -- committed claim is seen), keep per job only the candidates that fit, oldest first, up to
    -- p_limit, and mark them running.
    WITH cand AS (
        SELECT u.run_id, u.run_job, u.job_limit, u.ord
          FROM unnest(ids, jobs, limits) WITH ORDINALITY AS u(run_id, run_job, job_limit, ord)),
    act AS (
        SELECT a.job_id AS act_job, count(*) AS n
          FROM sisyphus.runs a
         WHERE a.job_id = ANY (jobs) AND a.status IN ('running', 'suspended')
         GROUP BY a.job_id),
    fit AS (
        SELECT c.run_id
          FROM (SELECT cand.*, row_number() OVER (PARTITION BY cand.run_job ORDER BY cand.ord) AS nth
                  FROM cand) c
          LEFT JOIN act ON act.act_job = c.run_job
         WHERE c.nth <= c.job_limit - coalesce(act.n, 0)
         ORDER BY c.ord
         LIMIT p_limit),
    -- By primary key, for the ids in hand: a join with `fit` let the planner hash every
    -- pending run of the table on each claim (found profiling a 100,000-run backlog).
    upd AS (
        UPDATE sisyphus.runs r
           SET status = 'running', host = p_host, started_at = clock_timestamp(),
               lease_expires_at = clock_timestamp() + p_lease
         WHERE r.id = ANY (ARRAY(SELECT run_id FROM fit)) AND r.status = 'pending'
        RETURNING r.id AS upd_id)
    SELECT coalesce(array_agg(upd_id), '{}') INTO claimed_ids FROM upd;
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
