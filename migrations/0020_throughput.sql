-- Throughput of the database path (issue 17): outcomes recorded as a set, claims that skip past
-- rows other guardians are claiming instead of colliding on the head of the queue, and no
-- exclusive per-job lock for jobs whose concurrency no set of claims in flight can reach.
-- Measured with `sisyphus-bench profile` and `peers` (BENCHMARKS.md, "Throughput and the
-- database path").

-- The pending runs of a job in due order: the claim's per-job scan (below) walks it from the
-- oldest due run and skips rows other claimers hold. It replaces 0003's `(job_id)` index, which
-- it serves too (finish_run's "does this job have pending runs?").
CREATE INDEX runs_pending_by_job_due ON sisyphus.runs (job_id, scheduled_for, id)
    WHERE status = 'pending';
DROP INDEX sisyphus.runs_pending_by_job;

-- Records a batch of outcomes (compare-and-set each: only runs still running or suspended).
-- Ends that may retry (failed, timeout, lost) go one by one through finish_run_unchecked, which
-- adds the next attempt; every other end is one UPDATE for the whole batch, and the guardians
-- are woken at most once per batch: when a job of the batch has pending runs and was at its
-- concurrency before the batch freed its slots (finish_run's rule, per job instead of per run).
-- The caller locks the runs in ascending id order first (the recorder does, as the heartbeat).
-- Returns (run, recorded?) per outcome.
CREATE FUNCTION sisyphus.finish_runs_unchecked(
    p_runs bigint[], p_statuses text[], p_exit integer[], p_signal integer[], p_summary text[],
    p_error text[], p_finished timestamptz[])
RETURNS TABLE (run bigint, recorded boolean)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
    plain bigint[];
    ended bigint[];
    ended_jobs bigint[];
    wake boolean;
BEGIN
    -- The runs' resource names in the one order first (see serialise_run_names): the releases
    -- the runs' triggers make then never take name locks out of order.
    PERFORM sisyphus.serialise_run_names(p_runs);
    plain := ARRAY(SELECT u.r FROM unnest(p_runs, p_statuses) AS u(r, s)
                    WHERE u.s NOT IN ('failed', 'timeout', 'lost'));
    -- By primary key for the ids in hand (`id = ANY`), joined to the outcomes only for values.
    WITH o AS (
        SELECT u.r, u.s::sisyphus.run_status AS s, u.x, u.g, u.m, u.e, u.f
          FROM unnest(p_runs, p_statuses, p_exit, p_signal, p_summary, p_error, p_finished)
               AS u(r, s, x, g, m, e, f)
         WHERE u.s NOT IN ('failed', 'timeout', 'lost')),
    upd AS (
        UPDATE sisyphus.runs a
           SET status = o.s, exit_code = o.x, signal = o.g, summary = o.m, error = o.e,
               finished_at = coalesce(o.f, t), requested = NULL, lease_expires_at = NULL
          FROM o
         WHERE a.id = ANY (plain) AND a.id = o.r AND a.status IN ('running', 'suspended')
        RETURNING a.id, a.job_id)
    SELECT coalesce(array_agg(upd.id), '{}'), coalesce(array_agg(upd.job_id), '{}')
      INTO ended, ended_jobs
      FROM upd;
    -- Per job of the batch, once: pending runs wait, and the job was at its limit.
    SELECT coalesce(bool_or(true), false) INTO wake
      FROM (SELECT x AS job, count(*) AS n FROM unnest(ended_jobs) x GROUP BY x) j
      JOIN sisyphus.jobs jb ON jb.id = j.job
     WHERE (SELECT count(*) FROM sisyphus.runs a
             WHERE a.job_id = j.job AND a.status IN ('running', 'suspended')) + j.n >= jb.concurrency
       AND EXISTS (SELECT 1 FROM sisyphus.runs p WHERE p.job_id = j.job AND p.status = 'pending');
    IF wake THEN
        PERFORM pg_notify('sisyphus_runs', '');
    END IF;
    RETURN QUERY
    SELECT u.r, CASE WHEN u.s IN ('failed', 'timeout', 'lost')
                     THEN sisyphus.finish_run_unchecked(u.r, '{running,suspended}',
                                                        u.s::sisyphus.run_status, u.x, u.g, u.m,
                                                        u.e, u.f)
                     ELSE u.r = ANY (ended) END
      FROM unnest(p_runs, p_statuses, p_exit, p_signal, p_summary, p_error, p_finished)
           WITH ORDINALITY AS u(r, s, x, g, m, e, f, ord)
     ORDER BY u.ord;
END $$;

-- The guardian's entry: the runs must be on hosts the login is bound to (checked once per host
-- of the batch, as finish_run checks each run's).
CREATE FUNCTION sisyphus.finish_runs(
    p_runs bigint[], p_statuses text[], p_exit integer[], p_signal integer[], p_summary text[],
    p_error text[], p_finished timestamptz[])
RETURNS TABLE (run bigint, recorded boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    h record;
BEGIN
    IF pg_has_role(session_user, 'sisyphus_guardian', 'MEMBER')
       AND NOT pg_has_role(session_user, 'sisyphus_scheduler', 'MEMBER') THEN
        FOR h IN SELECT DISTINCT r.host, min(r.id) AS any_run
                   FROM sisyphus.runs r WHERE r.id = ANY (p_runs)
                  GROUP BY r.host LOOP
            IF h.host IS NULL THEN
                RAISE EXCEPTION '% may not act on run %: it is on no host', session_user, h.any_run
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM sisyphus.require_host(h.host);
        END LOOP;
    END IF;
    RETURN QUERY SELECT * FROM sisyphus.finish_runs_unchecked(p_runs, p_statuses, p_exit, p_signal,
                                                              p_summary, p_error, p_finished);
END $$;

REVOKE EXECUTE ON FUNCTION
    sisyphus.finish_runs_unchecked(bigint[], text[], integer[], integer[], text[], text[], timestamptz[]),
    sisyphus.finish_runs(bigint[], text[], integer[], integer[], text[], text[], timestamptz[])
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    sisyphus.finish_runs(bigint[], text[], integer[], integer[], text[], text[], timestamptz[])
    TO sisyphus_guardian;

-- 0016's claim, restated whole with three changes:
-- 1. Rows are locked by a scan per job, in due order, that skips rows another claimer holds and
--    goes on to the next ones (FOR UPDATE SKIP LOCKED under LIMIT), up to what the job may take;
--    0016 picked the oldest candidates from an unlocked snapshot and then tried to lock exactly
--    those, so guardians claiming together collided on the head of the queue and came back with
--    few runs or none.
-- 2. The per-job lock is taken SHARED, and not exclusive, for a job whose concurrency no set of
--    claims in flight can reach: at most max_connections claiming transactions are in flight at
--    any moment, and a claim in shared mode takes at most 1,000 runs, so a job with at least
--    (max_connections + 1) × 1,000 free places, counted under the shared lock, stays under its
--    limit whatever they take (a claim in exclusive mode waits for every shared holder and
--    counts after them). The count under the lock decides; the unlocked count only chooses the
--    mode. Shared holders do not wait for each other.
-- 3. The final count keeps, per job, only what fits (the margin above for shared mode).
CREATE OR REPLACE FUNCTION sisyphus.claim_runs_unchecked(p_host text, p_pools text[],
                                                          p_limit integer, p_lease interval)
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
    governed bigint[];
    shared bigint[];
    job bigint;
    -- Free places a job needs for a shared-mode claim (see above); claims of more than 1,000
    -- runs always lock exclusively.
    margin bigint := (current_setting('max_connections')::bigint + 1) * 1000;
    -- Taken once: a variable is a plan parameter, so the partial indexes serve the ordered
    -- scans; `clock_timestamp()` in the predicate would force a full sort.
    t timestamptz := clock_timestamp();
BEGIN
    IF p_limit <= 0 OR EXISTS (SELECT 1 FROM sisyphus.hosts h WHERE h.name = p_host AND h.draining) THEN
        RETURN;
    END IF;
    -- Which jobs have due runs for this host, and how many each may take by an optimistic count
    -- (checked again under the lock below), from a window of the oldest due runs (an ordered
    -- scan of the partial index that stops early, whatever the backlog). Then, per job, its
    -- pending runs in due order, locked, skipping runs another guardian is claiming, up to that
    -- many. The jobs with an overlap policy among the runs meant for this host are noted, room
    -- or not.
    WITH due AS MATERIALIZED (
        SELECT r.id AS due_id, r.job_id AS due_job, r.target_host AS due_host, r.scheduled_for AS due_time
          FROM sisyphus.runs r
         WHERE r.status = 'pending' AND r.scheduled_for <= t
           AND (r.expires_at IS NULL OR r.expires_at > t)
         ORDER BY r.scheduled_for, r.id
         LIMIT greatest(256, p_limit * 16)),
    mine AS MATERIALIZED (
        SELECT d.due_job AS mine_job, min(d.due_time) AS mine_time, j.concurrency AS mine_limit,
               j.overlap AS mine_overlap,
               -- Whether the job's runs for no particular host are this host's to take.
               (NOT j.target_all AND (j.target_pool IS NULL OR j.target_pool = ANY (p_pools)))
                   AS mine_any
          FROM due d
          JOIN sisyphus.jobs j ON j.id = d.due_job
         WHERE d.due_host = p_host
            OR (d.due_host IS NULL AND NOT j.target_all
                AND (j.target_pool IS NULL OR j.target_pool = ANY (p_pools)))
         GROUP BY d.due_job, j.concurrency, j.overlap, j.target_all, j.target_pool),
    busy AS MATERIALIZED (
        SELECT a.job_id AS busy_job, count(*) AS n
          FROM sisyphus.runs a
         WHERE a.job_id IN (SELECT mine_job FROM mine) AND a.status IN ('running', 'suspended')
         GROUP BY a.job_id),
    -- The jobs, oldest due run first, while their places add up to under twice the batch.
    room AS MATERIALIZED (
        SELECT f.* FROM (
            SELECT m.mine_job AS room_job, m.mine_limit AS room_limit, m.mine_any AS room_any,
                   m.mine_limit - coalesce(b.n, 0) AS room_free,
                   least(m.mine_limit - coalesce(b.n, 0), p_limit) AS room_n,
                   sum(least(m.mine_limit - coalesce(b.n, 0), p_limit))
                       OVER (ORDER BY m.mine_time, m.mine_job ROWS UNBOUNDED PRECEDING) AS upto
              FROM mine m
              LEFT JOIN busy b ON b.busy_job = m.mine_job
             WHERE m.mine_limit - coalesce(b.n, 0) > 0) f
         WHERE f.upto - f.room_n < p_limit * 2),
    c AS MATERIALIZED (
        SELECT x.run_id, rm.room_job AS run_job, rm.room_limit AS job_limit, x.due_at
          FROM room rm
          CROSS JOIN LATERAL (
                SELECT r.id AS run_id, r.scheduled_for AS due_at
                  FROM sisyphus.runs r
                 WHERE r.job_id = rm.room_job AND r.status = 'pending' AND r.scheduled_for <= t
                   AND (r.expires_at IS NULL OR r.expires_at > t)
                   AND (r.target_host = p_host OR (r.target_host IS NULL AND rm.room_any))
                 ORDER BY r.scheduled_for, r.id
                 LIMIT rm.room_n
                   FOR UPDATE OF r SKIP LOCKED) x)
    SELECT array_agg(c.run_id ORDER BY c.due_at, c.run_id), array_agg(c.run_job ORDER BY c.due_at, c.run_id),
           array_agg(c.job_limit ORDER BY c.due_at, c.run_id),
           (SELECT array_agg(DISTINCT m.mine_job) FROM mine m WHERE m.mine_overlap <> 'queue'),
           (SELECT array_agg(b.room_job) FROM room b
             WHERE p_limit <= 1000 AND b.room_free >= 2 * margin
               AND b.room_job NOT IN (SELECT m.mine_job FROM mine m WHERE m.mine_overlap <> 'queue'))
      INTO ids, jobs, limits, governed, shared
      FROM c;
    IF ids IS NULL AND governed IS NULL THEN
        RETURN;
    END IF;
    shared := coalesce(shared, '{}');
    FOR job IN SELECT DISTINCT x FROM unnest(coalesce(jobs, '{}') || governed) x ORDER BY x LOOP
        IF job = ANY (shared) THEN
            PERFORM pg_advisory_xact_lock_shared(1397313369, (job % 2147483647)::integer);
        ELSE
            PERFORM pg_advisory_xact_lock(1397313369, (job % 2147483647)::integer);
        END IF;
    END LOOP;
    -- Overlap policies first (migration 0016): what they skipped is no longer a candidate, and
    -- what `replace` asked to terminate still counts as active below.
    IF governed IS NOT NULL THEN
        PERFORM sisyphus.settle_overlap(governed);
        SELECT array_agg(u.run_id ORDER BY u.ord), array_agg(u.run_job ORDER BY u.ord),
               array_agg(u.job_limit ORDER BY u.ord)
          INTO ids, jobs, limits
          FROM unnest(ids, jobs, limits) WITH ORDINALITY AS u(run_id, run_job, job_limit, ord)
         WHERE EXISTS (SELECT 1 FROM sisyphus.runs x WHERE x.id = u.run_id AND x.status = 'pending');
        IF ids IS NULL THEN
            RETURN;
        END IF;
    END IF;
    -- Under the locks, one statement: count each job's active runs (a fresh snapshot, so every
    -- committed claim is seen), keep per job only the candidates that fit (in shared mode, with
    -- the margin left free), oldest first, up to p_limit, and mark them running.
    WITH cand AS (
        SELECT u.run_id, u.run_job,
               CASE WHEN u.run_job = ANY (shared) THEN u.job_limit - margin ELSE u.job_limit END AS job_limit,
               u.ord
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

-- 0018's live-page hints, sent only while a dashboard listens. A NOTIFY takes the cluster's
-- notification queue lock from the commit's start to its end, so every transaction that sends
-- one commits after the other: with the hint on every claim and outcome batch, the drain's
-- sessions spent about a third of their time waiting for that lock (`sisyphus-bench profile`,
-- "Lock:object" at COMMIT). A dashboard's LISTEN connection names itself `sisyphus web
-- (listen)` (web/src/live.rs): the server's table of sessions says whether one is connected
-- (the application name is shown to every caller). Reading that table copies every session's
-- entry (about 0.25 ms with 400 connections), so each session remembers the answer for 0.2 s
-- (a session setting): a dashboard that has just connected may miss the hints of its first
-- 0.2 s, as it misses those of a reconnection; its pages read the rows themselves when they
-- load. A changed name in web/src/live.rs would silence the live pages, which the web
-- tests would see. Inlined in both triggers (they run as whoever changes runs or writes lines).
CREATE OR REPLACE FUNCTION sisyphus.web_notify_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    seen text := current_setting('sisyphus.web_listening', true);
    listening boolean;
BEGIN
    IF seen IS NULL OR seen = '' OR split_part(seen, ' ', 1)::double precision
                                    < extract(epoch FROM clock_timestamp()) - 0.2 THEN
        listening := EXISTS (SELECT 1 FROM pg_stat_get_activity(NULL) a
                              WHERE a.application_name = 'sisyphus web (listen)');
        PERFORM set_config('sisyphus.web_listening',
                           extract(epoch FROM clock_timestamp()) || ' ' || listening, false);
    ELSE
        listening := split_part(seen, ' ', 2)::boolean;
    END IF;
    IF listening THEN
        PERFORM pg_notify('sisyphus_web', 'runs');
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION sisyphus.web_notify_lines() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    seen text := current_setting('sisyphus.web_listening', true);
    listening boolean;
    ids text;
BEGIN
    IF seen IS NULL OR seen = '' OR split_part(seen, ' ', 1)::double precision
                                    < extract(epoch FROM clock_timestamp()) - 0.2 THEN
        listening := EXISTS (SELECT 1 FROM pg_stat_get_activity(NULL) a
                              WHERE a.application_name = 'sisyphus web (listen)');
        PERFORM set_config('sisyphus.web_listening',
                           extract(epoch FROM clock_timestamp()) || ' ' || listening, false);
    ELSE
        listening := split_part(seen, ' ', 2)::boolean;
    END IF;
    IF NOT listening THEN
        RETURN NULL;
    END IF;
    ids := (SELECT string_agg(DISTINCT run_id::text, ',') FROM new_lines);
    IF ids IS NOT NULL THEN
        PERFORM pg_notify('sisyphus_web', 'log ' || CASE WHEN length(ids) > 7000 THEN '*' ELSE ids END);
    END IF;
    RETURN NULL;
END $$;
