-- A queue that stays fast under a held snapshot (issue 17, target 4). While a snapshot is held
-- (pg_dump, a long report, an idle-in-transaction session), vacuum can remove nothing, and every
-- run claimed or ended since the snapshot began leaves an index entry behind in the partial
-- indexes of pending and of active runs (`runs_pending_due`, `runs_pending_by_job_due`,
-- `runs_active`): the status is in their predicates, so each claim and outcome makes a new
-- version of the row and the old version's entry stays until vacuum. 0020's claim walked those
-- entries from the oldest on, six times per claim and outcome batch (the window of due runs, each
-- job's pending runs, two counts of active runs, finish_runs' count and its "pending runs?"),
-- about 7 ms each per 60,000 dead entries: after 60,000 runs a claim cost 80 ms, and the drain
-- fell to a fifth (`sisyphus-bench throughput`, "held snapshot"; measured in psql on a private
-- cluster, BENCHMARKS.md). Three changes, none of which changes what a claim may take:
--
-- 1. The window of due runs starts where the session's last claim found the oldest due run (or,
--    when it found none, at the time that claim looked: every run due by then was taken), not
--    at the index's first entry. Every run below that point was claimed, ended or expired when
--    that claim looked (runs there are not made pending again), except runs inserted since with
--    an older due time — a catch-up slot, a run whose insert was still uncommitted. So once a
--    second a claim looks at the whole window again: such a run waits at most about a second
--    longer. That full look is shared by the fleet (`sisyphus.claim_floor`, one row): a session
--    whose point is older than a second takes the row's if the row's look is fresher, and only
--    otherwise looks at the whole window itself and writes the row — under a held snapshot a
--    whole window walks every dead entry (0.07 s at 500,000), and every guardian session doing
--    that every second was most of what was left of the slowdown. The session's point is kept
--    in a session setting (`sisyphus.claim_floor`, as 0020 keeps `sisyphus.web_listening`).
-- 2. Each job's scan of its pending runs starts at that job's oldest due run in the window (the
--    same statement and snapshot, so nothing is skipped that the window saw as pending).
-- 3. Fewer counts of a job's active runs. Every claim now draws one number per run it marks
--    running from the sequence `sisyphus.claimed_runs` before it commits, and a session that
--    counted a job's active runs remembers the count C with the sequence's value S read just
--    before the count (`sisyphus.active_seen`). Later, with the sequence at S', the job has at
--    most C + (S' − S) + M active runs, M = `sisyphus.claim_margin()`: every run that became
--    active since the count drew a number after S, except runs of claims already in flight when
--    S was read (at most max_connections claims in shared mode, of at most 250 runs each: M is
--    (max_connections + 1) × 250 — 0020 allowed claims of 1,000 in shared mode, which made M
--    too large for a bound to help a job of concurrency 1,000,000 on a server of 400
--    connections). Where that bound leaves the job room for a whole batch with 0020's margins,
--    the claim uses it instead of counting — for the optimistic look, and under the shared lock
--    in place of the count (read after the lock is taken, 0020's argument holds for the bound as
--    for a count: invariant `fleet-wide-concurrency` in ARCHITECTURE.md) — and finish_runs,
--    which counts only to decide on a wake-up, skips a job the bound shows is not at its limit.
--    Jobs with real limits (under 3M + the batch) are counted as before; a roomy job of limit L
--    is counted again about every L − 3M runs claimed anywhere.

-- Change 1's shared look: when a claim last looked at the whole window of due runs, and the
-- point it found. Written and read only by the owner's claim function (no grants; row-level
-- security on, with no policy, so no other login could read it even if granted).
CREATE TABLE sisyphus.claim_floor (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    looked_at timestamptz NOT NULL,
    floor_t   timestamptz NOT NULL,
    floor_id  bigint NOT NULL
);
ALTER TABLE sisyphus.claim_floor ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON sisyphus.claim_floor FROM PUBLIC;
INSERT INTO sisyphus.claim_floor VALUES (true, '-infinity', '-infinity', 0);

-- The places a claim in shared mode keeps free (0020's margin, now for claims of at most 250
-- runs instead of 1,000): at most max_connections claiming transactions are in flight at any
-- moment, and together they cannot mark more runs running than this.
CREATE FUNCTION sisyphus.claim_margin() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (current_setting('max_connections')::bigint + 1) * 250
$$;
REVOKE EXECUTE ON FUNCTION sisyphus.claim_margin() FROM PUBLIC;

-- Change 3's sequence: one number per run ever marked running by a claim.
CREATE SEQUENCE sisyphus.claimed_runs MINVALUE 0 START 0;
-- Called once, so that `last_value` moves with every number drawn from now on.
SELECT nextval('sisyphus.claimed_runs');

-- The active runs a job has at most, per job this session counted (change 3), with the sequence
-- at `p_seq`.
CREATE FUNCTION sisyphus.active_bounds(p_seq bigint) RETURNS TABLE (job bigint, at_most bigint)
LANGUAGE sql VOLATILE AS $$
    SELECT split_part(e, ':', 1)::bigint,
           split_part(e, ':', 2)::bigint + (p_seq - split_part(e, ':', 3)::bigint)
               + sisyphus.claim_margin()
      FROM unnest(string_to_array(nullif(current_setting('sisyphus.active_seen', true), ''), ',')) e
$$;

-- Remembers the counts `p_counts` of jobs `p_jobs`' active runs, made with the sequence read at
-- `p_seq` before the count, in place of what the session knew of those jobs (the 200 latest).
CREATE FUNCTION sisyphus.note_active(p_jobs bigint[], p_counts bigint[], p_seq bigint)
RETURNS void
LANGUAGE sql VOLATILE AS $$
    SELECT set_config('sisyphus.active_seen', coalesce(string_agg(x.e, ',' ORDER BY x.ord), ''), false)
      FROM (SELECT e, ord FROM (
                SELECT u.j || ':' || u.c || ':' || p_seq AS e, 0 AS ord
                  FROM unnest(p_jobs, p_counts) AS u(j, c)
                UNION ALL
                SELECT o.e, o.ord
                  FROM unnest(string_to_array(nullif(current_setting('sisyphus.active_seen', true), ''), ','))
                       WITH ORDINALITY AS o(e, ord)
                 WHERE split_part(o.e, ':', 1)::bigint <> ALL (p_jobs)) y
             ORDER BY ord LIMIT 200) x;
    SELECT NULL::void
$$;

REVOKE EXECUTE ON FUNCTION sisyphus.active_bounds(bigint),
    sisyphus.note_active(bigint[], bigint[], bigint) FROM PUBLIC;
REVOKE ALL ON SEQUENCE sisyphus.claimed_runs FROM PUBLIC;

-- 0020's claim, restated whole with changes 1–3 above.
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
    margin bigint := sisyphus.claim_margin();
    t timestamptz := clock_timestamp();
    -- Change 1: where the window starts ('-infinity' and 0: at the beginning), the look it
    -- comes from, and whether this claim looks at the whole window.
    memory text := nullif(current_setting('sisyphus.claim_floor', true), '');
    looked timestamptz := coalesce(split_part(memory, '|', 1), '-infinity')::timestamptz;
    floor_t timestamptz := coalesce(split_part(split_part(memory, '|', 2), '#', 2), '-infinity')::timestamptz;
    floor_id bigint := coalesce(nullif(split_part(split_part(memory, '|', 2), '#', 1), ''), '0')::bigint;
    whole boolean := false;
    oldest_t timestamptz;
    oldest_id bigint;
    -- Change 3: the sequence before the optimistic count, and the counts made.
    seq bigint := (SELECT last_value FROM sisyphus.claimed_runs);
    counted bigint[];
    counts bigint[];
BEGIN
    IF p_limit <= 0 OR EXISTS (SELECT 1 FROM sisyphus.hosts h WHERE h.name = p_host AND h.draining) THEN
        RETURN;
    END IF;
    IF looked < t - interval '1 second' THEN
        SELECT f.looked_at, f.floor_t, f.floor_id INTO looked, floor_t, floor_id
          FROM sisyphus.claim_floor f;
        IF looked < t - interval '1 second' THEN
            whole := true;
            looked := t;
            floor_t := '-infinity';
            floor_id := 0;
        END IF;
    END IF;
    -- As 0020: which jobs have due runs for this host, from a window of the oldest due runs
    -- (from the floor), how many each may take by an optimistic count (or the bound, where it
    -- leaves room for shared mode), then per job its pending runs in due order from its oldest
    -- in the window, locked, skipping runs another guardian is claiming.
    WITH due AS MATERIALIZED (
        SELECT r.id AS due_id, r.job_id AS due_job, r.target_host AS due_host, r.scheduled_for AS due_time
          FROM sisyphus.runs r
         WHERE r.status = 'pending' AND r.scheduled_for <= t
           AND (r.scheduled_for, r.id) >= (floor_t, floor_id)
           AND (r.expires_at IS NULL OR r.expires_at > t)
         ORDER BY r.scheduled_for, r.id
         LIMIT greatest(256, p_limit * 16)),
    firsts AS MATERIALIZED (
        SELECT d.due_job AS f_job, d.due_host AS f_host, min(d.due_time) AS f_time,
               (array_agg(d.due_id ORDER BY d.due_time, d.due_id))[1] AS f_id
          FROM due d
         GROUP BY d.due_job, d.due_host),
    mine AS MATERIALIZED (
        SELECT f.f_job AS mine_job, min(f.f_time) AS mine_time,
               (array_agg(f.f_id ORDER BY f.f_time, f.f_id))[1] AS mine_id,
               j.concurrency AS mine_limit, j.overlap AS mine_overlap,
               (NOT j.target_all AND (j.target_pool IS NULL OR j.target_pool = ANY (p_pools)))
                   AS mine_any,
               min(b.at_most) AS mine_bound
          FROM firsts f
          JOIN sisyphus.jobs j ON j.id = f.f_job
          LEFT JOIN sisyphus.active_bounds(seq) b
                 ON b.job = f.f_job AND b.at_most + p_limit <= j.concurrency - 2 * margin
         WHERE f.f_host = p_host
            OR (f.f_host IS NULL AND NOT j.target_all
                AND (j.target_pool IS NULL OR j.target_pool = ANY (p_pools)))
         GROUP BY f.f_job, j.concurrency, j.overlap, j.target_all, j.target_pool),
    -- Counted one job at a time (a job with none active is remembered too), and not at all
    -- for jobs whose bound serves.
    busy AS MATERIALIZED (
        SELECT m.mine_job AS busy_job,
               (SELECT count(*) FROM sisyphus.runs a
                 WHERE a.job_id = m.mine_job AND a.status IN ('running', 'suspended')) AS n
          FROM mine m
         WHERE m.mine_bound IS NULL),
    room AS MATERIALIZED (
        SELECT f.* FROM (
            SELECT m.mine_job AS room_job, m.mine_limit AS room_limit, m.mine_any AS room_any,
                   m.mine_time AS room_time, m.mine_id AS room_id,
                   m.mine_limit - coalesce(m.mine_bound, b.n, 0) AS room_free,
                   least(m.mine_limit - coalesce(m.mine_bound, b.n, 0), p_limit) AS room_n,
                   sum(least(m.mine_limit - coalesce(m.mine_bound, b.n, 0), p_limit))
                       OVER (ORDER BY m.mine_time, m.mine_job ROWS UNBOUNDED PRECEDING) AS upto
              FROM mine m
              LEFT JOIN busy b ON b.busy_job = m.mine_job
             WHERE m.mine_limit - coalesce(m.mine_bound, b.n, 0) > 0) f
         WHERE f.upto - f.room_n < p_limit * 2),
    c AS MATERIALIZED (
        SELECT x.run_id, rm.room_job AS run_job, rm.room_limit AS job_limit, x.due_at
          FROM room rm
          CROSS JOIN LATERAL (
                SELECT r.id AS run_id, r.scheduled_for AS due_at
                  FROM sisyphus.runs r
                 WHERE r.job_id = rm.room_job AND r.status = 'pending' AND r.scheduled_for <= t
                   AND (r.scheduled_for, r.id) >= (rm.room_time, rm.room_id)
                   AND (r.expires_at IS NULL OR r.expires_at > t)
                   AND (r.target_host = p_host OR (r.target_host IS NULL AND rm.room_any))
                 ORDER BY r.scheduled_for, r.id
                 LIMIT rm.room_n
                   FOR UPDATE OF r SKIP LOCKED) x)
    SELECT array_agg(c.run_id ORDER BY c.due_at, c.run_id), array_agg(c.run_job ORDER BY c.due_at, c.run_id),
           array_agg(c.job_limit ORDER BY c.due_at, c.run_id),
           (SELECT array_agg(DISTINCT m.mine_job) FROM mine m WHERE m.mine_overlap <> 'queue'),
           (SELECT array_agg(b.room_job) FROM room b
             WHERE p_limit <= 250 AND b.room_free >= 2 * margin
               AND b.room_job NOT IN (SELECT m.mine_job FROM mine m WHERE m.mine_overlap <> 'queue')),
           (SELECT d.due_time FROM due d ORDER BY d.due_time, d.due_id LIMIT 1),
           (SELECT d.due_id FROM due d ORDER BY d.due_time, d.due_id LIMIT 1),
           (SELECT array_agg(b.busy_job ORDER BY b.busy_job) FROM busy b),
           (SELECT array_agg(b.n ORDER BY b.busy_job) FROM busy b)
      INTO ids, jobs, limits, governed, shared, oldest_t, oldest_id, counted, counts
      FROM c;
    IF counted IS NOT NULL THEN
        PERFORM sisyphus.note_active(counted, counts, seq);
    END IF;
    -- Where the next claim of this session starts: the oldest due run seen, or when none was
    -- (from the point on), the time this claim looked. A whole look is shared (unless another
    -- session's fresher one got there first).
    IF oldest_id IS NULL THEN
        oldest_t := t;
        oldest_id := 0;
    END IF;
    PERFORM set_config('sisyphus.claim_floor',
                       looked::text || '|' || oldest_id || '#' || oldest_t::text, false);
    IF whole THEN
        UPDATE sisyphus.claim_floor f
           SET looked_at = looked, floor_t = oldest_t, floor_id = oldest_id
         WHERE f.looked_at < looked;
    END IF;
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
    -- Under the locks, as 0020: each job's active runs — counted (a fresh snapshot, so every
    -- committed claim is seen), or for a job in shared mode the bound of change 3 with the
    -- sequence read now, after the lock, where it leaves room for the whole batch —, per job
    -- only the candidates that fit (in shared mode with the margin left free), marked running.
    seq := (SELECT last_value FROM sisyphus.claimed_runs);
    WITH cand AS (
        SELECT u.run_id, u.run_job,
               CASE WHEN u.run_job = ANY (shared) THEN u.job_limit - margin ELSE u.job_limit END AS job_limit,
               u.ord
          FROM unnest(ids, jobs, limits) WITH ORDINALITY AS u(run_id, run_job, job_limit, ord)),
    bound AS MATERIALIZED (
        SELECT b.job AS bound_job, b.at_most
          FROM sisyphus.active_bounds(seq) b
          JOIN (SELECT DISTINCT cand.run_job, cand.job_limit FROM cand) cj ON cj.run_job = b.job
         WHERE b.job = ANY (shared) AND b.at_most + p_limit <= cj.job_limit),
    act AS MATERIALIZED (
        SELECT cj.run_job AS act_job,
               (SELECT count(*) FROM sisyphus.runs a
                 WHERE a.job_id = cj.run_job AND a.status IN ('running', 'suspended')) AS n
          FROM (SELECT DISTINCT cand.run_job FROM cand) cj
         WHERE cj.run_job NOT IN (SELECT bound_job FROM bound)),
    fit AS (
        SELECT c.run_id
          FROM (SELECT cand.*, row_number() OVER (PARTITION BY cand.run_job ORDER BY cand.ord) AS nth
                  FROM cand) c
          LEFT JOIN bound ON bound.bound_job = c.run_job
          LEFT JOIN act ON act.act_job = c.run_job
         WHERE c.nth <= c.job_limit - coalesce(bound.at_most, act.n, 0)
         ORDER BY c.ord
         LIMIT p_limit),
    upd AS (
        UPDATE sisyphus.runs r
           SET status = 'running', host = p_host, started_at = clock_timestamp(),
               lease_expires_at = clock_timestamp() + p_lease
         WHERE r.id = ANY (ARRAY(SELECT run_id FROM fit)) AND r.status = 'pending'
        RETURNING r.id AS upd_id)
    SELECT coalesce((SELECT array_agg(upd_id) FROM upd), '{}'),
           (SELECT array_agg(act.act_job ORDER BY act.act_job) FROM act),
           (SELECT array_agg(act.n ORDER BY act.act_job) FROM act)
      INTO claimed_ids, counted, counts;
    -- Change 3: a number per run marked running, drawn before this transaction commits.
    PERFORM nextval('sisyphus.claimed_runs') FROM generate_series(1, cardinality(claimed_ids));
    IF counted IS NOT NULL THEN
        PERFORM sisyphus.note_active(counted, counts, seq);
    END IF;
    RETURN QUERY
    SELECT r.id, r.job_id, r.attempt, r.scheduled_for, j.project, j.name, j.command, j.shell, j.env,
           j.workdir, j.maxtime, j.run_as, j.userdata, j.keep_logs, j.compress_logs, j.compress_mode
      FROM sisyphus.runs r
      JOIN sisyphus.jobs j ON j.id = r.job_id
     WHERE r.id = ANY (claimed_ids);
END $$;

-- 0020's outcome batch, restated whole with change 3: the wake-up decision counts the active
-- runs only of jobs whose bound does not show them below their limit.
CREATE OR REPLACE FUNCTION sisyphus.finish_runs_unchecked(
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
    seq bigint;
    counted bigint[];
    counts bigint[];
BEGIN
    PERFORM sisyphus.serialise_run_names(p_runs);
    plain := ARRAY(SELECT u.r FROM unnest(p_runs, p_statuses) AS u(r, s)
                    WHERE u.s NOT IN ('failed', 'timeout', 'lost'));
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
    -- Per job of the batch, once: pending runs wait, and the job was at its limit before the
    -- batch freed its places — not so where the bound shows it below (then not counted).
    seq := (SELECT last_value FROM sisyphus.claimed_runs);
    WITH per AS MATERIALIZED (
        SELECT j.job, j.n, jb.concurrency AS lim
          FROM (SELECT x AS job, count(*) AS n FROM unnest(ended_jobs) x GROUP BY x) j
          JOIN sisyphus.jobs jb ON jb.id = j.job
         WHERE NOT EXISTS (SELECT 1 FROM sisyphus.active_bounds(seq) b
                            WHERE b.job = j.job AND b.at_most + j.n < jb.concurrency)),
    act AS MATERIALIZED (
        SELECT per.job, per.n, per.lim,
               (SELECT count(*) FROM sisyphus.runs a
                 WHERE a.job_id = per.job AND a.status IN ('running', 'suspended')) AS n_active
          FROM per)
    SELECT coalesce(bool_or(CASE WHEN act.n_active + act.n >= act.lim
                                 THEN EXISTS (SELECT 1 FROM sisyphus.runs p
                                               WHERE p.job_id = act.job AND p.status = 'pending')
                                 ELSE false END), false),
           array_agg(act.job), array_agg(act.n_active)
      INTO wake, counted, counts
      FROM act;
    IF counted IS NOT NULL THEN
        PERFORM sisyphus.note_active(counted, counts, seq);
    END IF;
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
