-- Resources and lineage (jobspy's model, on PostgreSQL).
--
-- A resource is a case-sensitive name. It exists once some holder wrote it as an output, and
-- stops counting as written when its expiry passes. A holder (a run, or a guard taken by a client
-- service) asks for inputs and outputs; `try_lock` grants all of them at once or none: shared
-- read locks on inputs, an exclusive write lock on outputs (no readers, no other writer). Every
-- lock has a lease that the holder refreshes; a lock whose lease passed is ignored and removed by
-- the next holder that needs its name. `release_lock` writes the outputs only when asked (a
-- successful run, a guard's `stop()`) and only while the holder still holds every lock it was
-- granted, and records each input→output edge with digits folded to `*`.
--
-- Deadlock freedom: a holder never waits while holding anything (a refused `try_lock` drops the
-- holder's locks). Inside the database every transaction that changes locks takes, in this
-- order: its own holder row, the per-name advisory locks (sorted), then lock rows. The lease
-- lives on the holder row, so the guardian's heartbeat refreshes holder rows only and never
-- holds a lock row or a name that a lock change waits for.

ALTER TYPE sisyphus.run_trigger ADD VALUE IF NOT EXISTS 'data';

ALTER TABLE sisyphus.jobs
    ADD COLUMN inputs         text[] NOT NULL DEFAULT '{}',
    ADD COLUMN outputs        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN lock_lease     interval NOT NULL DEFAULT '5 minutes' CHECK (lock_lease > '0'),
    ADD COLUMN lock_wait      interval NOT NULL DEFAULT '15 minutes' CHECK (lock_wait >= '0'),
    ADD COLUMN outputs_expire interval CHECK (outputs_expire > '0'),
    -- Data trigger: a run is created when every input has been written (see the scheduler).
    ADD COLUMN on_inputs      boolean NOT NULL DEFAULT false,
    -- The scheduler's watermark: resources written before this were already looked at.
    ADD COLUMN inputs_seen_at timestamptz;

CREATE INDEX jobs_on_inputs ON sisyphus.jobs (id) WHERE on_inputs AND NOT paused;

CREATE TABLE sisyphus.resources (
    name        text PRIMARY KEY CHECK (name <> ''),
    written_at  timestamptz NOT NULL,
    -- NULL: the output lasts until written again.
    expires_at  timestamptz,
    -- Who wrote it: `PROJECT/NAME` of a job, or the owner a client guard gave.
    writer      text NOT NULL,
    writer_job  bigint,
    writer_run  bigint,
    version     bigint NOT NULL DEFAULT 1
);

CREATE INDEX resources_written ON sisyphus.resources (written_at);
-- LIKE 'prefix____' lookups of the data trigger, whatever the database's collation.
CREATE INDEX resources_name_pattern ON sisyphus.resources (name text_pattern_ops);

CREATE TABLE sisyphus.resource_holders (
    -- `run:<id>` for runs; any other text for client guards.
    holder          text PRIMARY KEY,
    owner           text NOT NULL,
    job_id          bigint REFERENCES sisyphus.jobs (id) ON DELETE SET NULL,
    run_id          bigint REFERENCES sisyphus.runs (id) ON DELETE CASCADE,
    inputs          text[] NOT NULL DEFAULT '{}',
    outputs         text[] NOT NULL DEFAULT '{}',
    lease           interval NOT NULL CHECK (lease > '0'),
    -- Set when the locks are granted, moved on by each refresh; its locks count only before it.
    lease_until     timestamptz,
    outputs_expire  interval,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX resource_holders_run ON sisyphus.resource_holders (run_id) WHERE run_id IS NOT NULL;

CREATE TYPE sisyphus.lock_mode AS ENUM ('read', 'write');

CREATE TABLE sisyphus.resource_locks (
    name        text NOT NULL,
    holder      text NOT NULL REFERENCES sisyphus.resource_holders (holder) ON DELETE CASCADE,
    mode        sisyphus.lock_mode NOT NULL,
    PRIMARY KEY (name, holder)
);

CREATE INDEX resource_locks_holder ON sisyphus.resource_locks (holder);

-- Lineage: every input→output edge ever written, per writer, digits folded to `*`.
-- `source` is '' for an output written without inputs (a graph's root).
CREATE TABLE sisyphus.resource_edges (
    writer      text NOT NULL,
    source      text NOT NULL,
    target      text NOT NULL,
    writer_job  bigint,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    times       bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (writer, source, target)
);

CREATE INDEX resource_edges_job ON sisyphus.resource_edges (writer_job);

-- jobspy's sanitising: `re.sub('[0-9][0-9-]*', '*', edge)`.
CREATE FUNCTION sisyphus.lineage_name(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT regexp_replace(p_name, '[0-9][0-9-]*', '*', 'g') $$;

-- A resource name template resolved at a slot, in the job's time zone. Placeholders (all digits,
-- fixed width, so the scheduler can read a date back out of a name): {date} YYYY-MM-DD,
-- {yesterday} the day before, {year} YYYY, {month} MM, {day} DD, {hour} HH (24 h), {minute} MM.
CREATE FUNCTION sisyphus.resource_name(p_template text, p_slot timestamptz, p_zone text)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT replace(replace(replace(replace(replace(replace(replace(p_template,
               '{date}', to_char(l, 'YYYY-MM-DD')),
               '{yesterday}', to_char(l - interval '1 day', 'YYYY-MM-DD')),
               '{year}', to_char(l, 'YYYY')),
               '{month}', to_char(l, 'MM')),
               '{day}', to_char(l, 'DD')),
               '{hour}', to_char(l, 'HH24')),
               '{minute}', to_char(l, 'MI'))
      FROM (SELECT p_slot AT TIME ZONE p_zone AS l) s
$$;

-- Registers what a holder wants (adding to what it wanted before). Takes no lock.
CREATE FUNCTION sisyphus.request_lock(p_holder text, p_owner text, p_inputs text[],
                                      p_outputs text[], p_lease interval,
                                      p_outputs_expire interval DEFAULT NULL,
                                      p_job bigint DEFAULT NULL, p_run bigint DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_holder IS NULL OR p_holder = '' THEN
        RAISE EXCEPTION 'a lock holder needs a non-empty name' USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_inputs || p_outputs) x WHERE x IS NULL OR x = '') THEN
        RAISE EXCEPTION 'resource names must not be empty (holder %)', p_holder USING ERRCODE = '22023';
    END IF;
    IF p_lease IS NULL OR p_lease <= '0' THEN
        RAISE EXCEPTION 'lock lease must be more than zero, not %', p_lease USING ERRCODE = '22023';
    END IF;
    IF p_outputs_expire IS NOT NULL AND p_outputs_expire <= '0' THEN
        RAISE EXCEPTION 'outputs_expire must be more than zero, not %', p_outputs_expire
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO sisyphus.resource_holders AS h
           (holder, owner, job_id, run_id, inputs, outputs, lease, outputs_expire)
    VALUES (p_holder, p_owner, p_job, p_run,
            ARRAY(SELECT DISTINCT x FROM unnest(p_inputs) x ORDER BY x),
            ARRAY(SELECT DISTINCT x FROM unnest(p_outputs) x ORDER BY x),
            p_lease, p_outputs_expire)
    ON CONFLICT (holder) DO UPDATE SET
        inputs = ARRAY(SELECT DISTINCT x FROM unnest(h.inputs || EXCLUDED.inputs) x ORDER BY x),
        outputs = ARRAY(SELECT DISTINCT x FROM unnest(h.outputs || EXCLUDED.outputs) x ORDER BY x);
END $$;

-- Serialises lock changes on these names with concurrent ones (advisory locks in one order).
CREATE FUNCTION sisyphus.serialise_names(p_names text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k integer;
BEGIN
    FOR k IN SELECT DISTINCT hashtext(x) FROM unnest(p_names) x ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1397313370, k);
    END LOOP;
END $$;

-- The names of the given runs' holders, serialised at once in the one order: statements that end
-- several runs (the guardian's batched outcomes, lease expiry) call this first, so the releases
-- their triggers make never take name locks out of order.
CREATE FUNCTION sisyphus.serialise_run_names(p_runs bigint[]) RETURNS void
LANGUAGE sql AS $$
    SELECT sisyphus.serialise_names(coalesce(array_agg(x), '{}'))
      FROM sisyphus.resource_holders rh
     CROSS JOIN unnest(rh.inputs || rh.outputs) AS x
     WHERE rh.run_id = ANY (p_runs)
$$;

-- One attempt to take every lock the holder wants, all or none. Refused: the holder holds
-- nothing afterwards (it never waits while holding), `waitable` says whether waiting can help
-- (a busy name) or not (an input never written, or expired).
CREATE FUNCTION sisyphus.try_lock(p_holder text, OUT granted boolean, OUT waitable boolean,
                                  OUT reason text)
LANGUAGE plpgsql AS $$
DECLARE
    h sisyphus.resource_holders;
    names text[];
    missing text;
    b record;
BEGIN
    granted := false;
    waitable := false;
    SELECT * INTO h FROM sisyphus.resource_holders WHERE holder = p_holder FOR UPDATE;
    IF NOT FOUND THEN
        reason := format('no lock request named %s', p_holder);
        RETURN;
    END IF;
    names := ARRAY(SELECT DISTINCT x FROM unnest(h.inputs || h.outputs) x);
    PERFORM sisyphus.serialise_names(names);
    SELECT x INTO missing FROM unnest(h.inputs) x
     WHERE NOT EXISTS (SELECT 1 FROM sisyphus.resources r
                        WHERE r.name = x AND (r.expires_at IS NULL OR r.expires_at > now()))
     ORDER BY x LIMIT 1;
    IF missing IS NOT NULL THEN
        DELETE FROM sisyphus.resource_locks WHERE holder = p_holder;
        reason := format('input %s has never been written as an output (or it expired)', missing);
        RETURN;
    END IF;
    SELECT l.name, l.mode, l.holder AS other INTO b
      FROM sisyphus.resource_locks l
      JOIN sisyphus.resource_holders o ON o.holder = l.holder
     WHERE l.name = ANY (names) AND l.holder <> p_holder AND o.lease_until > now()
       AND (l.name = ANY (h.outputs) OR l.mode = 'write')
     ORDER BY l.name LIMIT 1;
    IF FOUND THEN
        DELETE FROM sisyphus.resource_locks WHERE holder = p_holder;
        waitable := true;
        reason := format('%s is %s-locked by %s', b.name, b.mode, b.other);
        RETURN;
    END IF;
    -- Locks whose lease passed are gone now; their holders can no longer write.
    DELETE FROM sisyphus.resource_locks l
     USING sisyphus.resource_holders o
     WHERE o.holder = l.holder AND l.name = ANY (names) AND l.holder <> p_holder
       AND coalesce(o.lease_until, '-infinity') <= now();
    INSERT INTO sisyphus.resource_locks (name, holder, mode)
    SELECT x, p_holder,
           CASE WHEN x = ANY (h.outputs) THEN 'write' ELSE 'read' END::sisyphus.lock_mode
      FROM unnest(names) x
    ON CONFLICT (name, holder) DO UPDATE SET mode = EXCLUDED.mode;
    UPDATE sisyphus.resource_holders SET lease_until = now() + h.lease WHERE holder = p_holder;
    granted := true;
END $$;

-- Whether the holder was granted its locks and still holds every one of them: nobody took over
-- a lapsed lease. False for an unknown holder or one that holds nothing.
CREATE FUNCTION sisyphus.holds_all(p_holder text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(bool_and(held > 0 AND held = wanted), false)
      FROM (SELECT (SELECT count(*) FROM sisyphus.resource_locks l WHERE l.holder = h.holder) AS held,
                   (SELECT count(DISTINCT x) FROM unnest(h.inputs || h.outputs) x) AS wanted
              FROM sisyphus.resource_holders h WHERE h.holder = p_holder) c
$$;

-- Extends the holder's leases; false when it lost one (or holds nothing).
CREATE FUNCTION sisyphus.refresh_lock(p_holder text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT sisyphus.holds_all(p_holder) THEN
        RETURN false;
    END IF;
    UPDATE sisyphus.resource_holders SET lease_until = now() + lease WHERE holder = p_holder;
    RETURN true;
END $$;

-- Ends a holder. With p_write, writes its outputs (and their lineage edges) — only if it still
-- holds every lock; otherwise nothing is written and `reason` says why.
CREATE FUNCTION sisyphus.release_lock(p_holder text, p_write boolean, OUT written integer,
                                      OUT reason text)
LANGUAGE plpgsql AS $$
DECLARE
    h sisyphus.resource_holders;
BEGIN
    written := 0;
    SELECT * INTO h FROM sisyphus.resource_holders WHERE holder = p_holder FOR UPDATE;
    IF NOT FOUND THEN
        reason := format('no lock request named %s', p_holder);
        RETURN;
    END IF;
    PERFORM sisyphus.serialise_names(h.inputs || h.outputs);
    IF p_write AND cardinality(h.outputs) > 0 THEN
        IF NOT sisyphus.holds_all(p_holder) THEN
            reason := 'a lock lease lapsed and another holder took over: outputs not written';
        ELSE
            INSERT INTO sisyphus.resources AS r
                   (name, written_at, expires_at, writer, writer_job, writer_run)
            SELECT x, now(), now() + h.outputs_expire, h.owner, h.job_id, h.run_id
              FROM unnest(h.outputs) x
            ON CONFLICT (name) DO UPDATE SET
                written_at = EXCLUDED.written_at, expires_at = EXCLUDED.expires_at,
                writer = EXCLUDED.writer, writer_job = EXCLUDED.writer_job,
                writer_run = EXCLUDED.writer_run, version = r.version + 1;
            GET DIAGNOSTICS written = ROW_COUNT;
            INSERT INTO sisyphus.resource_edges AS e (writer, source, target, writer_job)
            SELECT DISTINCT h.owner, sisyphus.lineage_name(i), sisyphus.lineage_name(o), h.job_id
              FROM unnest(CASE WHEN cardinality(h.inputs) = 0 THEN ARRAY[''] ELSE h.inputs END) i,
                   unnest(h.outputs) o
            ON CONFLICT (writer, source, target) DO UPDATE SET
                last_seen = now(), times = e.times + 1, writer_job = EXCLUDED.writer_job;
            -- Data-triggered jobs may have become due.
            PERFORM pg_notify('sisyphus_jobs', 'resources');
        END IF;
    END IF;
    DELETE FROM sisyphus.resource_holders WHERE holder = p_holder;
END $$;

-- Locks for SQL users: register, then try until granted or `p_wait` passed, committing between
-- attempts (so nothing is held while waiting). Raises when refused. Call outside a transaction.
CREATE PROCEDURE sisyphus.lock_resources(p_holder text, p_owner text, p_inputs text[],
                                         p_outputs text[], p_lease interval, p_wait interval,
                                         p_outputs_expire interval DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + p_wait;
    r record;
BEGIN
    PERFORM sisyphus.request_lock(p_holder, p_owner, p_inputs, p_outputs, p_lease,
                                  p_outputs_expire);
    COMMIT;
    LOOP
        SELECT * INTO r FROM sisyphus.try_lock(p_holder);
        COMMIT;
        EXIT WHEN r.granted;
        IF NOT r.waitable OR clock_timestamp() >= deadline THEN
            DELETE FROM sisyphus.resource_holders WHERE holder = p_holder;
            COMMIT;
            RAISE EXCEPTION 'cannot lock resources for %: %', p_holder, r.reason
                USING ERRCODE = '55P03';
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;

-- A run's locks: the job's templates resolved at the run's slot, plus what the run adds while it
-- goes on (`p_inputs`, `p_outputs`); then one attempt. The guardian calls this before starting
-- the process and repeats it within the job's lock_wait.
CREATE FUNCTION sisyphus.lock_run_resources(p_run bigint, p_inputs text[] DEFAULT '{}',
                                            p_outputs text[] DEFAULT '{}',
                                            OUT granted boolean, OUT waitable boolean,
                                            OUT reason text)
LANGUAGE plpgsql AS $$
DECLARE
    j sisyphus.jobs;
    r sisyphus.runs;
BEGIN
    SELECT * INTO r FROM sisyphus.runs WHERE id = p_run;
    IF NOT FOUND OR r.status NOT IN ('running', 'suspended') THEN
        granted := false;
        waitable := false;
        reason := format('run %s is not running', p_run);
        RETURN;
    END IF;
    SELECT * INTO j FROM sisyphus.jobs WHERE id = r.job_id;
    PERFORM sisyphus.request_lock(
        'run:' || p_run, j.project || '/' || j.name,
        ARRAY(SELECT sisyphus.resource_name(t, r.slot, j.timezone) FROM unnest(j.inputs) t) || p_inputs,
        ARRAY(SELECT sisyphus.resource_name(t, r.slot, j.timezone) FROM unnest(j.outputs) t) || p_outputs,
        j.lock_lease, j.outputs_expire, j.id, p_run);
    SELECT * INTO granted, waitable, reason FROM sisyphus.try_lock('run:' || p_run);
END $$;

-- A run that ends releases its locks in the same transaction as its outcome: successful and
-- uneventful runs write their outputs, every other end writes none.
-- (`release_lock` returns at once, after one primary-key probe, for a run without locks.)
CREATE FUNCTION sisyphus.release_run_resources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sisyphus.release_lock('run:' || NEW.id, NEW.status IN ('successful', 'uneventful'));
    RETURN NULL;
END $$;

CREATE TRIGGER runs_release_resources AFTER UPDATE OF status ON sisyphus.runs
    FOR EACH ROW
    WHEN (OLD.status IN ('running', 'suspended')
          AND NEW.status NOT IN ('pending', 'running', 'suspended'))
    EXECUTE FUNCTION sisyphus.release_run_resources();

-- Resources with their last writer, age and current locks, for `sisyctl resources`.
CREATE VIEW sisyphus.resource_status AS
SELECT n.name, r.written_at, r.expires_at, r.writer, r.writer_run, r.version,
       (r.written_at IS NOT NULL AND (r.expires_at IS NULL OR r.expires_at > now())) AS available,
       (SELECT count(*) FROM sisyphus.resource_locks l
          JOIN sisyphus.resource_holders o ON o.holder = l.holder
         WHERE l.name = n.name AND l.mode = 'read' AND o.lease_until > now()) AS readers,
       (SELECT l.holder FROM sisyphus.resource_locks l
          JOIN sisyphus.resource_holders o ON o.holder = l.holder
         WHERE l.name = n.name AND l.mode = 'write' AND o.lease_until > now() LIMIT 1) AS write_holder
  FROM (SELECT name FROM sisyphus.resources
        UNION SELECT name FROM sisyphus.resource_locks) n
  LEFT JOIN sisyphus.resources r ON r.name = n.name;
