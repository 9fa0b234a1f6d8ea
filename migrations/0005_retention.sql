-- Queue health and retention (issue 4).
--
-- 1. `run_logs` is partitioned by day (of `at`, in UTC), so that old lines go by dropping a
--    partition: no row-by-row DELETE, no dead tuples, no vacuum debt. A DEFAULT partition catches
--    a line whose day has no partition yet, so no line is ever refused; when the day's partition
--    is created later, such lines are moved into it.
-- 2. `sisyphus.prune` drops old log partitions and deletes old finished runs (in batches, never a
--    job's latest run, so health and `job show` keep their last result).
-- 3. The hot tables get autovacuum settings suited to a queue: vacuum after a small fraction of
--    changes, without cost throttling, and room on each page for HOT updates.

ALTER TABLE sisyphus.run_logs RENAME TO run_logs_before_0005;
ALTER TABLE sisyphus.run_logs_before_0005 RENAME CONSTRAINT run_logs_pkey TO run_logs_before_0005_pkey;

-- The primary key must contain the partition key; `at` is fixed when the guardian reads the line
-- (a spool replay writes the same value), so (run_id, seq, at) still stores each line once.
CREATE TABLE sisyphus.run_logs (
    run_id          bigint NOT NULL REFERENCES sisyphus.runs (id) ON DELETE CASCADE,
    seq             integer NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    stream          sisyphus.log_stream NOT NULL,
    tags            text[] NOT NULL DEFAULT '{}',
    task            text,
    text            text NOT NULL,
    PRIMARY KEY (run_id, seq, at)
) PARTITION BY RANGE (at);

CREATE TABLE sisyphus.run_logs_default PARTITION OF sisyphus.run_logs DEFAULT;

-- The partition holding day `p_day` (UTC).
CREATE FUNCTION sisyphus.log_partition_name(p_day date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'run_logs_' || to_char(p_day, 'YYYYMMDD') $$;

-- Creates the daily partitions for `p_days` days from `p_from` that do not exist yet, moving any
-- lines of those days out of the default partition first. Returns how many it created.
CREATE FUNCTION sisyphus.ensure_log_partitions(p_from date, p_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    part text;
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
BEGIN
    FOR i IN 0 .. p_days - 1 LOOP
        day := p_from + i;
        part := sisyphus.log_partition_name(day);
        CONTINUE WHEN to_regclass(format('sisyphus.%I', part)) IS NOT NULL;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE sisyphus.%I (LIKE sisyphus.run_logs INCLUDING DEFAULTS)', part);
        EXECUTE format('WITH moved AS (DELETE FROM sisyphus.run_logs_default WHERE at >= %L AND at < %L
                                       RETURNING *)
                        INSERT INTO sisyphus.%I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE sisyphus.run_logs ATTACH PARTITION sisyphus.%I
                        FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Retention. Drops every daily log partition whose whole day ended before now() - p_keep_logs
-- (and deletes such lines from the default partition, which holds only strays); deletes up to
-- p_batch finished runs that ended before now() - p_keep_runs, except each job's latest run.
CREATE FUNCTION sisyphus.prune(p_keep_logs interval, p_keep_runs interval, p_batch integer DEFAULT 10000)
RETURNS TABLE (dropped_partitions integer, deleted_runs bigint)
LANGUAGE plpgsql AS $$
DECLARE
    part text;
    log_cutoff timestamptz := now() - p_keep_logs;
BEGIN
    dropped_partitions := 0;
    FOR part IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'sisyphus.run_logs'::regclass
           AND c.relname ~ '^run_logs_[0-9]{8}$'
           AND (to_date(substr(c.relname, 10), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= log_cutoff
    LOOP
        EXECUTE format('DROP TABLE sisyphus.%I', part);
        dropped_partitions := dropped_partitions + 1;
    END LOOP;
    DELETE FROM sisyphus.run_logs_default WHERE at < log_cutoff;

    WITH old AS (
        SELECT r.id
          FROM sisyphus.runs r
         WHERE r.finished_at < now() - p_keep_runs
           AND r.status NOT IN ('pending', 'running', 'suspended')
           AND r.id <> (SELECT max(l.id) FROM sisyphus.runs l WHERE l.job_id = r.job_id)
         LIMIT p_batch
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM sisyphus.runs r USING old WHERE r.id = old.id;
    GET DIAGNOSTICS deleted_runs = ROW_COUNT;
    RETURN NEXT;
END
$$;

SELECT sisyphus.ensure_log_partitions((now() AT TIME ZONE 'UTC')::date - 1, 5);
INSERT INTO sisyphus.run_logs SELECT * FROM sisyphus.run_logs_before_0005;
DROP TABLE sisyphus.run_logs_before_0005;

-- Autovacuum for a queue: the hot tables are small and churn fast.
ALTER TABLE sisyphus.runs SET (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE sisyphus.hosts SET (
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 200,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE sisyphus.jobs SET (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE sisyphus.resource_holders SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 200,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE sisyphus.resource_locks SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 200,
    autovacuum_vacuum_cost_delay = 0
);
