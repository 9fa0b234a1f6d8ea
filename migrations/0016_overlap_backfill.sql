-- Schedules beyond cron (issue 18), items 1 and 3: a job's overlap policy, and backfill.
--
-- Overlap. `jobs.overlap` says what a slot of the schedule does when it comes due while the job
-- is at its concurrency: `queue` (wait for a free place within its TTL, as before), `skip` (it is
-- recorded as `skipped`, the run it yielded to in `runs.yielded_to`), `buffer_one` (one waits,
-- later ones are `skipped`), `replace` (the running runs of the schedule are terminated — the
-- path of `sisyctl kill`, so the guardian ends the whole process group and cgroup — and the
-- newest slot starts once they are gone; `yielded_to` of a replaced run names its successor and
-- its error reads "replaced by run N"). The labels are `sisyphus_model::spec::Overlap`'s (a test
-- compares them with the CHECK).
--
-- What the policy governs: runs of the schedule (trigger `schedule`) as they come due. Runs a
-- person asked for (`manual`, `rerun`, `backfill`), retries and data-triggered runs are never
-- skipped: they wait for a free place, as under `queue`; while active they count against the
-- concurrency like any run, so a slot that comes due then yields to them. `replace` terminates
-- only runs of the schedule (and their retries), never a run a person asked for. For an `all`
-- job the policy is per host: a host's copy of a slot that comes due while a run of the job is
-- still active on that host yields to (or replaces) it — one run per host is the unit of overlap
-- — and `concurrency` still caps the copies across the fleet (a copy that fits its host but not
-- the fleet waits, as under `queue`).
--
-- Where the decision is taken, and why it is exact (invariant `fleet-wide-concurrency`):
-- `settle_overlap` decides under the job's transaction advisory lock — the one every claim takes
-- before it counts active runs — so the active runs it counts are exactly those committed
-- claims made, and no claim can start a run of the job while it decides. It is called by every
-- claim (`claim_runs_unchecked`, for each job with a policy among the due runs it looks at,
-- whether or not it has room for them) and by the scheduler's leader after each tick
-- (`settle_due_overlaps`, for runs that came due since its last call: also when no guardian
-- has room to claim). A run `comes due` at its `scheduled_for` (the slot plus jitter), not when
-- the scheduler materialises it up to 5 s ahead; it is decided at the first look after that
-- (a claiming guardian wakes at that instant; the scheduler looks within a tick), and a skipped
-- run never runs, a claimed one is never skipped. Neither depends on the scheduler: during a
-- failover the claims go on deciding, and two scheduler leaders could not decide twice either
-- (the skip is an update of a pending row under the lock).
--
-- Backfill. `sisyphus.backfill(project, name, from, to, slots, max, dry_run)` records the job's
-- past slots in [from, to) that have no good run (successful or uneventful) and none pending,
-- running or suspended, in `backfill_queue`; the scheduler's leader materialises them oldest
-- first as runs with trigger `backfill` (the slot's next attempt number, so `runs_one_per_slot`
-- holds beside the slot's scheduled run), only as many as the job has room for — the
-- concurrency less its active and due pending runs — so a long backfill never fills the claim's
-- window of due runs and never waits out a TTL: each run's `expires_at` is its
-- materialisation plus the job's TTL. The slots come from the scheduler's own cron evaluator
-- (`Client::backfill`, `sisyctl backfill`): this function takes them as given, checking that they
-- lie in [from, to) and the job's window, and that there are at most `max` (10,000 unless
-- raised).

ALTER TABLE sisyphus.jobs
    ADD COLUMN overlap text NOT NULL DEFAULT 'queue'
        CONSTRAINT jobs_overlap_check CHECK (overlap IN ('queue', 'skip', 'buffer_one', 'replace'));

-- A skipped run: the run it yielded to. A run being replaced: the run that replaces it (its error
-- says so once it ends). Not a foreign key, as `rerun_of`: it outlives the other's retention.
ALTER TABLE sisyphus.runs ADD COLUMN yielded_to bigint;

-- `overlap` is a definition column: the editor's check and the audit row (0014's note).
DROP TRIGGER jobs_check_edit ON sisyphus.jobs;
CREATE TRIGGER jobs_check_edit BEFORE INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused, pause_reason, paused_until, params, format,
    overlap
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_check_edit();

DROP TRIGGER jobs_audit ON sisyphus.jobs;
CREATE TRIGGER jobs_audit AFTER INSERT OR DELETE OR UPDATE OF
    project, name, command, shell, env, workdir, cron, every, at, timezone, starts_at, ends_at,
    iterations, ttl, catchup, jitter, maxtime, retries, retry_backoff, concurrency, target_all,
    target_pool, userdata, run_as, keep_logs, compress_logs, compress_mode, inputs, outputs,
    lock_lease, lock_wait, outputs_expire, on_inputs, max_health_age, notify, warn_after,
    min_duration, memory_max, cpu_weight, paused, pause_reason, paused_until, params, format,
    overlap
    ON sisyphus.jobs FOR EACH ROW EXECUTE FUNCTION sisyphus.jobs_audit();

-- Whether an active run belongs to the schedule: a scheduled run, or a retry of one (the nearest
-- earlier attempt of its slot that is not a retry was scheduled). What `replace` may terminate.
CREATE FUNCTION sisyphus.run_of_schedule(r sisyphus.runs) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT r.trigger = 'schedule'
        OR (r.trigger = 'retry'
            AND (SELECT o.trigger FROM sisyphus.runs o
                  WHERE o.job_id = r.job_id AND o.slot = r.slot
                    AND coalesce(o.target_host, '') = coalesce(r.target_host, '')
                    AND o.attempt < r.attempt AND o.trigger <> 'retry'
                  ORDER BY o.attempt DESC LIMIT 1) = 'schedule')
$$;

-- Decides the overlap policy of the given jobs for their scheduled runs that are due and pending.
-- The caller holds each job's transaction advisory lock (key 1397313369, job id), taken in job-id
-- order. Per job (per host for an `all` job, whose limit there is one run): with `room` free
-- places of its concurrency,
-- - skip: the oldest `room` may still start, the rest are skipped (yielded to the newest active
--   run, or to the last one that may start);
-- - buffer_one: one more than `room` may, the rest are skipped (yielded to the one that waits);
-- - replace: the newest `concurrency` may, older ones are skipped (yielded to the newest); the
--   oldest active runs of the schedule not already being replaced are asked to terminate until
--   there is room for them.
-- Pending runs another transaction holds are skipped over (SKIP LOCKED): only a claimer holds
-- them, and it settles them under this same lock before it claims. Termination requests lock
-- their runs in ascending id order, as heartbeats and outcomes do, and go through
-- `request_control_unchecked`, as `sisyctl kill` does.
CREATE FUNCTION sisyphus.settle_overlap(p_jobs bigint[], OUT skipped integer, OUT replaced integer)
LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := clock_timestamp();
    g record;
    pend bigint[];
    act bigint[];
    doomed bigint[];
    room integer;
    keep integer;
    gone bigint[];
    successor bigint;
    why text;
    need integer;
    marked bigint[] := '{}';
    successors bigint[] := '{}';
    asks boolean[] := '{}';
    fresh bigint[];
    v record;
    state sisyphus.run_status;
    skips bigint[] := '{}';
    skipped_for bigint[] := '{}';
    reasons text[] := '{}';
BEGIN
    skipped := 0;
    replaced := 0;
    FOR g IN
        SELECT j.id AS job, j.overlap AS policy,
               CASE WHEN j.target_all THEN 1 ELSE j.concurrency END AS lim, k.grp
          FROM sisyphus.jobs j
          CROSS JOIN LATERAL (
                SELECT DISTINCT coalesce(r.target_host, '') AS grp
                  FROM sisyphus.runs r
                 WHERE r.job_id = j.id AND r.status = 'pending' AND r.trigger = 'schedule'
                   AND r.scheduled_for <= t) k
         WHERE j.id = ANY (p_jobs) AND j.overlap <> 'queue'
         ORDER BY j.id, k.grp
    LOOP
        SELECT array_agg(x.id ORDER BY x.scheduled_for, x.id) INTO pend
          FROM (SELECT r.id, r.scheduled_for FROM sisyphus.runs r
                 WHERE r.job_id = g.job AND coalesce(r.target_host, '') = g.grp
                   AND r.status = 'pending' AND r.trigger = 'schedule' AND r.scheduled_for <= t
                   AND (r.expires_at IS NULL OR r.expires_at > t)
                   FOR UPDATE SKIP LOCKED) x;
        CONTINUE WHEN pend IS NULL;
        SELECT array_agg(a.id ORDER BY a.started_at, a.id),
               array_agg(a.id ORDER BY a.id) FILTER (WHERE a.yielded_to IS NOT NULL)
          INTO act, doomed
          FROM sisyphus.runs a
         WHERE a.job_id = g.job AND coalesce(a.target_host, '') = g.grp
           AND a.status IN ('running', 'suspended');
        room := greatest(g.lim - coalesce(cardinality(act), 0), 0);
        CONTINUE WHEN cardinality(pend) <= room;
        IF g.policy = 'skip' THEN
            keep := room;
            successor := coalesce(act[cardinality(act)], pend[keep]);
            why := 'yielded to run %s, still active (overlap = skip)';
        ELSIF g.policy = 'buffer_one' THEN
            keep := room + 1;
            CONTINUE WHEN cardinality(pend) <= keep;
            successor := pend[keep];
            why := 'yielded to run %s, already waiting (overlap = buffer_one)';
        ELSE
            keep := least(cardinality(pend), g.lim);
            successor := pend[cardinality(pend)];
            why := 'yielded to run %s, a newer slot (overlap = replace)';
        END IF;
        gone := CASE WHEN g.policy = 'replace' THEN pend[1:cardinality(pend) - keep]
                     ELSE pend[keep + 1:] END;
        IF cardinality(gone) > 0 THEN
            skips := skips || gone;
            skipped_for := skipped_for || array_fill(successor, ARRAY[cardinality(gone)]);
            reasons := reasons || array_fill(format(why, successor), ARRAY[cardinality(gone)]);
        END IF;
        IF g.policy = 'replace' THEN
            -- Runs already being replaced make room too; they now give way to the newest slot.
            need := keep - room - coalesce(cardinality(doomed), 0);
            fresh := ARRAY(SELECT a.id FROM sisyphus.runs a
                            WHERE a.id = ANY (act) AND a.yielded_to IS NULL
                              AND sisyphus.run_of_schedule(a)
                            ORDER BY a.started_at, a.id
                            LIMIT greatest(need, 0));
            marked := marked || coalesce(doomed, '{}') || fresh;
            successors := successors
                || array_fill(successor, ARRAY[coalesce(cardinality(doomed), 0) + cardinality(fresh)]);
            asks := asks || array_fill(false, ARRAY[coalesce(cardinality(doomed), 0)])
                || array_fill(true, ARRAY[cardinality(fresh)]);
        END IF;
    END LOOP;
    -- The skipped runs of every job in one statement (one per job cost 0.4 ms each: the
    -- statement's triggers and its own overhead; `sisyphus-bench calendars`). By id alone, through
    -- the primary key: they were locked above while pending, so nothing has changed them since,
    -- and a status condition would let the planner walk a partial index of every pending run
    -- whenever the statistics say there are few.
    UPDATE sisyphus.runs r
       SET status = 'skipped', finished_at = t, yielded_to = k.successor, error = k.reason
      FROM unnest(skips, skipped_for, reasons) AS k(id, successor, reason)
     WHERE r.id = k.id;
    skipped := cardinality(skips);
    FOR v IN SELECT m.id, m.successor, m.ask
               FROM unnest(marked, successors, asks) AS m(id, successor, ask)
              ORDER BY m.id LOOP
        SELECT r.status INTO state FROM sisyphus.runs r WHERE r.id = v.id FOR UPDATE;
        CONTINUE WHEN state IS NULL OR state NOT IN ('running', 'suspended');
        UPDATE sisyphus.runs SET yielded_to = v.successor WHERE id = v.id;
        IF v.ask THEN
            PERFORM sisyphus.request_control_unchecked(v.id, 'terminate');
            replaced := replaced + 1;
        END IF;
    END LOOP;
END $$;

-- The scheduler leader's look after each tick: scheduled runs of jobs with a policy that came
-- due since its last look (`scheduled_for` after `p_since`) or were written since (id after
-- `p_after`: slots caught up already due), settled under their jobs' locks — also when no
-- guardian has room to claim them. NULLs: every due one (a new leader's first look). Returns the
-- next look's `p_since` and `p_after`, and what it did. Cost: the runs that came due or were
-- written since the last look, through `runs_pending_due` and the primary key.
CREATE FUNCTION sisyphus.settle_due_overlaps(p_since timestamptz, p_after bigint,
                                             OUT settled_to timestamptz, OUT last_id bigint,
                                             OUT skipped integer, OUT replaced integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    t timestamptz := clock_timestamp();
    jobs bigint[];
    job bigint;
BEGIN
    settled_to := t;
    last_id := coalesce((SELECT max(id) FROM sisyphus.runs), 0);
    skipped := 0;
    replaced := 0;
    SELECT array_agg(DISTINCT c.job_id ORDER BY c.job_id) INTO jobs
      FROM (SELECT r.job_id FROM sisyphus.runs r
             WHERE r.status = 'pending' AND r.scheduled_for > coalesce(p_since, '-infinity')
               AND r.scheduled_for <= t AND r.trigger = 'schedule'
            UNION
            SELECT r.job_id FROM sisyphus.runs r
             WHERE r.id > coalesce(p_after, 0) AND r.status = 'pending'
               AND r.scheduled_for <= t AND r.trigger = 'schedule') c
      JOIN sisyphus.jobs j ON j.id = c.job_id
     WHERE j.overlap <> 'queue';
    IF jobs IS NULL THEN
        RETURN;
    END IF;
    FOREACH job IN ARRAY jobs LOOP
        PERFORM pg_advisory_xact_lock(1397313369, (job % 2147483647)::integer);
    END LOOP;
    SELECT s.skipped, s.replaced INTO skipped, replaced FROM sisyphus.settle_overlap(jobs) s;
END $$;

-- A replaced run's outcome: terminated, "replaced by run N"; one that ended otherwise before its
-- guardian got to it (it finished, or its lease ran out) keeps its own outcome and loses the mark.
CREATE FUNCTION sisyphus.replaced_run_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'terminated' THEN
        NEW.error := 'replaced by run ' || NEW.yielded_to;
    ELSE
        NEW.yielded_to := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER runs_replaced_outcome BEFORE UPDATE OF status ON sisyphus.runs
    FOR EACH ROW
    WHEN (OLD.yielded_to IS NOT NULL AND OLD.status IN ('running', 'suspended')
          AND NEW.status NOT IN ('running', 'suspended'))
    EXECUTE FUNCTION sisyphus.replaced_run_outcome();

-- 0003's claim, restated whole with one change: jobs with an overlap policy among the due runs
-- it looks at are locked too (in the same job-id order) and settled before the claim counts and
-- takes what fits; the candidates a settlement skipped are dropped. A claim that sees no such
-- job does exactly what it did before.
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
    -- guardian is claiming. Active runs are counted once per job, not once per candidate. The
    -- jobs with an overlap policy among the runs meant for this host are noted, room or not.
    WITH due AS MATERIALIZED (
        SELECT r.id AS due_id, r.job_id AS due_job, r.target_host AS due_host, r.scheduled_for AS due_time
          FROM sisyphus.runs r
         WHERE r.status = 'pending' AND r.scheduled_for <= t
           AND (r.expires_at IS NULL OR r.expires_at > t)
         ORDER BY r.scheduled_for, r.id
         LIMIT greatest(256, p_limit * 16)),
    mine AS MATERIALIZED (
        SELECT d.due_id AS mine_id, d.due_job AS mine_job, d.due_time AS mine_time,
               j.concurrency AS mine_limit, j.overlap AS mine_overlap,
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
           array_agg(c.job_limit ORDER BY c.due_at, c.run_id),
           (SELECT array_agg(DISTINCT m.mine_job) FROM mine m WHERE m.mine_overlap <> 'queue')
      INTO ids, jobs, limits, governed
      FROM c;
    IF ids IS NULL AND governed IS NULL THEN
        RETURN;
    END IF;
    FOR job IN SELECT DISTINCT x FROM unnest(coalesce(jobs, '{}') || governed) x ORDER BY x LOOP
        PERFORM pg_advisory_xact_lock(1397313369, (job % 2147483647)::integer);
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

-- Backfill: past slots waiting to become runs, per host for an `all` job ('' otherwise). Rows are
-- written only by `backfill` and deleted by `cancel_backfill` and the scheduler as it
-- materialises them (`sql/scheduler/feed_backfills.sql`); a removed job takes its slots along.
CREATE TABLE sisyphus.backfill_queue (
    job_id          bigint NOT NULL REFERENCES sisyphus.jobs (id) ON DELETE CASCADE,
    slot            timestamptz NOT NULL,
    target_host     text NOT NULL DEFAULT '',
    requested_at    timestamptz NOT NULL DEFAULT now(),
    requested_by    name NOT NULL DEFAULT session_user,
    PRIMARY KEY (job_id, slot, target_host)
);

ALTER TABLE sisyphus.backfill_queue ENABLE ROW LEVEL SECURITY;
-- People see the waiting slots of the jobs they see; the scheduler reads and takes them.
CREATE POLICY people_read ON sisyphus.backfill_queue FOR SELECT TO sisyphus_viewer
    USING (job_id IN (SELECT id FROM sisyphus.jobs));
CREATE POLICY scheduler_all ON sisyphus.backfill_queue FOR ALL TO sisyphus_scheduler
    USING (true) WITH CHECK (true);
GRANT SELECT ON sisyphus.backfill_queue TO sisyphus_viewer;
GRANT SELECT, DELETE ON sisyphus.backfill_queue TO sisyphus_scheduler;

-- Backfills the job's slots `p_slots` (its schedule's slots in [p_from, p_to), computed by the
-- caller with the scheduler's cron evaluator), oldest first. Returns each slot (per host for an
-- `all` job) with its state: `new` (queued now; with `p_dry_run`, would be), `waiting` (queued
-- by an earlier backfill), `active` (a run of it is pending, running or suspended: `run_id`),
-- `done` (a run of it ended successful or uneventful: `run_id`). Slots whose runs all ended
-- otherwise (failed, missed, skipped, …) or that never had one are new: backfill fills what did
-- not succeed and duplicates nothing. Operators of the project may call it; one audit row per
-- call that queued anything (dry runs write nothing). Refusals (SQLSTATE 22023): an empty or
-- reversed range, a slot outside it or outside the job's window, more slots than `p_max` (1 to
-- 1,000,000; 10,000 unless given), an `all` job with no live host.
CREATE FUNCTION sisyphus.backfill(p_project text, p_name text, p_from timestamptz,
                                  p_to timestamptz, p_slots timestamptz[],
                                  p_max integer DEFAULT 10000, p_dry_run boolean DEFAULT false)
RETURNS TABLE (slot timestamptz, target_host text, state text, run_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
#variable_conflict use_column
DECLARE
    j sisyphus.jobs;
    n integer := coalesce(cardinality(p_slots), 0);
    outside timestamptz;
    hosts text[];
    s timestamptz[];
    h text[];
    st text[];
    ids bigint[];
    queued integer;
BEGIN
    PERFORM sisyphus.require(p_project, 'operator', 'backfill jobs of');
    j := sisyphus.find_job(p_project, p_name);
    IF p_from IS NULL OR p_to IS NULL OR p_from >= p_to THEN
        RAISE EXCEPTION '--from % is not before --to %: the range [from, to) is empty',
            coalesce(p_from::text, '(none)'), coalesce(p_to::text, '(none)')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_max IS NULL OR p_max < 1 OR p_max > 1000000 THEN
        RAISE EXCEPTION '--max % is not within 1 to 1000000', coalesce(p_max::text, '(none)')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n > p_max THEN
        RAISE EXCEPTION 'the range holds % slots of %/%, more than %; narrow it or allow more with --max',
            n, p_project, p_name, p_max
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT min(x) INTO outside FROM unnest(p_slots) x
     WHERE x IS NULL OR x < p_from OR x >= p_to
        OR x < coalesce(j.starts_at, '-infinity') OR x > coalesce(j.ends_at, 'infinity');
    IF outside IS NOT NULL OR EXISTS (SELECT 1 FROM unnest(p_slots) x WHERE x IS NULL) THEN
        RAISE EXCEPTION 'slot % lies outside [%, %) or the window of %/%',
            coalesce(outside::text, '(none)'), p_from, p_to, p_project, p_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF j.target_all THEN
        hosts := ARRAY(SELECT lh.name FROM sisyphus.live_hosts lh
                        WHERE NOT lh.draining
                          AND (j.target_pool IS NULL OR j.target_pool = ANY (lh.pools))
                        ORDER BY lh.name);
        IF cardinality(hosts) = 0 THEN
            RAISE EXCEPTION 'job %/% runs on all hosts%, and no live host is there to backfill on',
                p_project, p_name, coalesce(' of pool ' || j.target_pool, '')
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSE
        hosts := '{""}';
    END IF;
    SELECT array_agg(c.slot ORDER BY c.slot, c.host), array_agg(c.host ORDER BY c.slot, c.host),
           array_agg(CASE WHEN c.good IS NOT NULL THEN 'done'
                          WHEN c.going IS NOT NULL THEN 'active'
                          WHEN c.waiting THEN 'waiting'
                          ELSE 'new' END ORDER BY c.slot, c.host),
           array_agg(coalesce(c.good, c.going) ORDER BY c.slot, c.host)
      INTO s, h, st, ids
      FROM (SELECT x.slot, x.host,
                   (SELECT r.id FROM sisyphus.runs r
                     WHERE r.job_id = j.id AND r.slot = x.slot
                       AND coalesce(r.target_host, '') = x.host
                       AND r.status IN ('successful', 'uneventful')
                     ORDER BY r.attempt DESC LIMIT 1) AS good,
                   (SELECT r.id FROM sisyphus.runs r
                     WHERE r.job_id = j.id AND r.slot = x.slot
                       AND coalesce(r.target_host, '') = x.host
                       AND r.status IN ('pending', 'running', 'suspended')
                     ORDER BY r.attempt DESC LIMIT 1) AS going,
                   EXISTS (SELECT 1 FROM sisyphus.backfill_queue q
                            WHERE q.job_id = j.id AND q.slot = x.slot
                              AND q.target_host = x.host) AS waiting
              FROM (SELECT DISTINCT u AS slot, v AS host
                      FROM unnest(p_slots) u CROSS JOIN unnest(hosts) v) x) c;
    IF NOT p_dry_run THEN
        INSERT INTO sisyphus.backfill_queue (job_id, slot, target_host)
        SELECT j.id, q.slot, q.host
          FROM unnest(s, h, st) AS q(slot, host, state)
         WHERE q.state = 'new'
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS queued = ROW_COUNT;
        IF queued > 0 THEN
            PERFORM sisyphus.audit_write('run.backfill', p_project, p_project || '/' || p_name,
                jsonb_build_object('from', p_from, 'to', p_to, 'slots', n,
                                   'new', queued, 'max', p_max));
            -- The scheduler's leader materialises them at its next tick: wake it.
            PERFORM pg_notify('sisyphus_jobs', '');
        END IF;
    END IF;
    RETURN QUERY SELECT q.slot, nullif(q.host, ''), q.state, q.id
                   FROM unnest(s, h, st, ids) AS q(slot, host, state, id);
END $$;

-- Takes back the slots of a job's backfill that have not become runs yet (runs already made are
-- cancelled as any run: `sisyctl kill`). Operators of the project; one audit row. Returns how many.
CREATE FUNCTION sisyphus.cancel_backfill(p_project text, p_name text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    j sisyphus.jobs;
    n integer;
BEGIN
    PERFORM sisyphus.require(p_project, 'operator', 'backfill jobs of');
    j := sisyphus.find_job(p_project, p_name);
    DELETE FROM sisyphus.backfill_queue WHERE job_id = j.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM sisyphus.audit_write('run.backfill_cancel', p_project, p_project || '/' || p_name,
                                 jsonb_build_object('cancelled', n));
    RETURN n;
END $$;

-- A skipped slot is no outcome: the job's last run, its health and the notifications' "previous
-- outcome" pass over it as over a cancelled one, and it raises nothing. A replaced run is the
-- policy at work, not a failure: it raises no `terminated`. (0007's run_ended_notify, 0008's
-- health_reason and 0013's job_status, restated whole with only that changed.)
CREATE OR REPLACE FUNCTION sisyphus.run_ended_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, sisyphus AS $$
DECLARE
    rules jsonb;
    overdue boolean;
    shortest interval;
    previous sisyphus.run_status;
BEGIN
    -- One lookup for the common case (bench: `sisyphus-bench notify`).
    SELECT coalesce(j.notify, d.notify, '[]'::jsonb), j.overdue_since IS NOT NULL, j.min_duration
      INTO rules, overdue, shortest
      FROM sisyphus.jobs j
      LEFT JOIN sisyphus.project_defaults d ON d.project = j.project
     WHERE j.id = NEW.job_id;
    IF overdue AND NEW.status IN ('successful', 'uneventful') THEN
        UPDATE sisyphus.jobs SET overdue_since = NULL WHERE id = NEW.job_id;
    END IF;
    IF rules = '[]'::jsonb THEN
        RETURN NULL;  -- the common case: nobody listens
    END IF;
    IF NEW.status IN ('failed', 'timeout', 'lost', 'missed', 'terminated')
       AND NOT (NEW.status = 'terminated' AND NEW.yielded_to IS NOT NULL) THEN
        IF NOT EXISTS (SELECT 1 FROM sisyphus.runs x
                        WHERE x.job_id = NEW.job_id AND x.slot = NEW.slot
                          AND x.attempt > NEW.attempt
                          AND coalesce(x.target_host, '') = coalesce(NEW.target_host, '')) THEN
            PERFORM sisyphus.enqueue_notifications(NEW.job_id, NEW.id,
                                                   NEW.status::text::sisyphus.notify_event);
        END IF;
    ELSIF NEW.status IN ('successful', 'uneventful') THEN
        -- The job's previous outcome, not counting earlier attempts of this same slot.
        SELECT x.status INTO previous
          FROM sisyphus.runs x
         WHERE x.job_id = NEW.job_id AND x.id < NEW.id
           AND x.status NOT IN ('pending', 'running', 'suspended', 'cancelled', 'skipped')
           AND NOT (x.slot = NEW.slot AND x.attempt < NEW.attempt)
         ORDER BY x.id DESC
         LIMIT 1;
        IF previous IN ('failed', 'timeout', 'lost', 'missed') THEN
            PERFORM sisyphus.enqueue_notifications(NEW.job_id, NEW.id, 'recovered',
                                                   format('previous run %s', previous));
        END IF;
        IF shortest IS NOT NULL AND NEW.finished_at - NEW.started_at < shortest THEN
            PERFORM sisyphus.enqueue_notifications(NEW.job_id, NEW.id, 'too_fast',
                format('ended after %s, sooner than min_duration %s',
                       NEW.finished_at - NEW.started_at, shortest));
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM sisyphus.run_logs l
                WHERE l.run_id = NEW.id AND l.tags && '{email,mattermost,sentry,external}') THEN
        PERFORM sisyphus.enqueue_notifications(NEW.job_id, NEW.id, 'tagged');
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER runs_ended_notify ON sisyphus.runs;
CREATE CONSTRAINT TRIGGER runs_ended_notify AFTER UPDATE OF status ON sisyphus.runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.status IN ('pending', 'running', 'suspended')
          AND NEW.status NOT IN ('pending', 'running', 'suspended', 'cancelled', 'skipped'))
    EXECUTE FUNCTION sisyphus.run_ended_notify();

CREATE OR REPLACE FUNCTION sisyphus.health_reason(p_job bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    WITH last AS (
        SELECT r.status, r.finished_at, coalesce(r.error, r.summary, '') AS text
          FROM sisyphus.runs r
         WHERE r.job_id = p_job AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled', 'skipped')
         ORDER BY r.id DESC
         LIMIT 1),
    good AS (
        SELECT r.finished_at
          FROM sisyphus.runs r
         WHERE r.job_id = p_job AND r.status IN ('successful', 'uneventful')
         ORDER BY r.id DESC
         LIMIT 1)
    SELECT CASE
        WHEN j.scheduler_error IS NOT NULL THEN
            format('scheduler error: %s', j.scheduler_error)
        WHEN l.status IS NULL THEN 'never run'
        WHEN l.status NOT IN ('successful', 'uneventful') THEN
            format('last run %s at %s: %s', l.status,
                   to_char(l.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS"Z"'), l.text)
        WHEN j.max_health_age IS NOT NULL AND now() - g.finished_at > j.max_health_age THEN
            format('last good run ended %s ago, more than max_health_age %s',
                   date_trunc('second', now() - g.finished_at), j.max_health_age)
        END
      FROM sisyphus.jobs j
      LEFT JOIN last l ON true
      LEFT JOIN good g ON true
     WHERE j.id = p_job
$$;

CREATE OR REPLACE VIEW sisyphus.job_status WITH (security_invoker = true) AS
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
            WHEN j.scheduler_error IS NOT NULL THEN 'scheduler-error'
            WHEN last.id IS NULL THEN 'never-run'
            WHEN last.status IN ('successful', 'uneventful') THEN 'ok'
            WHEN last.status = 'missed' THEN 'missed'
            ELSE 'failing' END AS health,
       reason.text IS NULL AS healthy,
       reason.text AS health_reason,
       j.max_health_age,
       j.scheduler_error,
       j.scheduler_error_at,
       j.pause_reason,
       j.paused_by,
       j.paused_at,
       j.paused_until
  FROM sisyphus.jobs j
  LEFT JOIN LATERAL (
        SELECT r.id, r.status, r.finished_at, r.summary
          FROM sisyphus.runs r
         WHERE r.job_id = j.id AND r.status NOT IN ('pending', 'running', 'suspended', 'cancelled', 'skipped')
         ORDER BY r.id DESC
         LIMIT 1) last ON true
  CROSS JOIN LATERAL (SELECT sisyphus.health_reason(j.id) AS text) reason;

-- Who may call what: people call the checking actions (which check the grant themselves); the
-- scheduler settles overlaps after its ticks. The bodies are granted to nobody.
REVOKE EXECUTE ON FUNCTION
    sisyphus.run_of_schedule(sisyphus.runs), sisyphus.settle_overlap(bigint[]),
    sisyphus.settle_due_overlaps(timestamptz, bigint), sisyphus.replaced_run_outcome(),
    sisyphus.claim_runs_unchecked(text, text[], integer, interval),
    sisyphus.backfill(text, text, timestamptz, timestamptz, timestamptz[], integer, boolean),
    sisyphus.cancel_backfill(text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    sisyphus.backfill(text, text, timestamptz, timestamptz, timestamptz[], integer, boolean),
    sisyphus.cancel_backfill(text, text)
    TO sisyphus_viewer;
GRANT EXECUTE ON FUNCTION sisyphus.settle_due_overlaps(timestamptz, bigint) TO sisyphus_scheduler;
