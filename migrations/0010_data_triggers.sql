-- Data triggers found by what was written, not by reading every data-triggered job (issue 14):
-- the scheduler's cost per tick grows with due jobs, not defined ones (invariant `tick-cost-by-due-jobs`).
--
-- Each tick the scheduler reads the resources written since it last looked (a global
-- watermark, `data_trigger_state`, less a minute: a writer's transaction may commit after a
-- later one with an earlier `now()`), folds their names as lineage does (`lineage_name`: digit
-- runs become `*`) and finds the jobs with one of those folded names among their inputs' keys
-- through a GIN index. A template's key is its name with every placeholder replaced by zeros,
-- folded: placeholders always resolve to digits (and `-` in dates) of fixed width, so every name
-- a template resolves to folds to its key, and the keys find a superset of the jobs whose inputs
-- were written. The scheduler then does the per-job work (data.rs) for those only.
--
-- Jobs that could not look when a resource was recent are looked at in full (from their own
-- watermark `inputs_seen_at`) once: new data-triggered jobs, jobs whose inputs, time zone or
-- trigger changed, resumed jobs and jobs whose scheduler error was cleared are queued in
-- `data_trigger_queue` by the trigger below; held-back marked jobs are read through their own
-- partial index once the hold-back passed.

-- A resource name template's key: the template with its placeholders as zeros, folded.
CREATE FUNCTION sisyphus.input_key(p_template text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sisyphus.lineage_name(
        replace(replace(replace(replace(replace(replace(replace(p_template,
            '{date}', '0000-00-00'), '{yesterday}', '0000-00-00'), '{year}', '0000'),
            '{month}', '00'), '{day}', '00'), '{hour}', '00'), '{minute}', '00'))
$$;

-- The keys of a job's inputs (an expression of the GIN index below and of the scheduler's query).
CREATE FUNCTION sisyphus.input_keys(p_inputs text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY(SELECT sisyphus.input_key(t) FROM unnest(p_inputs) AS t)
$$;

CREATE INDEX jobs_input_keys ON sisyphus.jobs USING gin (sisyphus.input_keys(inputs))
    WHERE on_inputs AND NOT paused;

-- Data-triggered jobs marked with a scheduler error: looked at in full once held back enough.
CREATE INDEX jobs_marked_on_inputs ON sisyphus.jobs (scheduler_error_at)
    WHERE on_inputs AND NOT paused AND scheduler_error IS NOT NULL;

-- The global watermark: resources written before `seen_until` less a minute were looked at for
-- every data-triggered job that could look. One row.
CREATE TABLE sisyphus.data_trigger_state (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    seen_until timestamptz
);
INSERT INTO sisyphus.data_trigger_state (seen_until)
SELECT CASE WHEN EXISTS (SELECT 1 FROM sisyphus.resources) THEN now() END;

-- Jobs to look at in full on the next tick (then removed).
CREATE TABLE sisyphus.data_trigger_queue (
    job_id bigint PRIMARY KEY REFERENCES sisyphus.jobs (id) ON DELETE CASCADE
);
-- Every data-triggered job existing now is looked at in full once.
INSERT INTO sisyphus.data_trigger_queue (job_id)
SELECT id FROM sisyphus.jobs WHERE on_inputs;

CREATE FUNCTION sisyphus.queue_data_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sisyphus.data_trigger_queue (job_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_data_trigger_new AFTER INSERT ON sisyphus.jobs
    FOR EACH ROW WHEN (NEW.on_inputs AND NOT NEW.paused)
    EXECUTE FUNCTION sisyphus.queue_data_trigger();

CREATE TRIGGER jobs_data_trigger_changed AFTER UPDATE ON sisyphus.jobs
    FOR EACH ROW
    WHEN (NEW.on_inputs AND NOT NEW.paused
          AND (NOT OLD.on_inputs OR OLD.paused
               OR NEW.inputs IS DISTINCT FROM OLD.inputs
               OR NEW.timezone IS DISTINCT FROM OLD.timezone
               OR (OLD.scheduler_error IS NOT NULL AND NEW.scheduler_error IS NULL)))
    EXECUTE FUNCTION sisyphus.queue_data_trigger();

-- The watermark and the queue are the scheduler's own state: no login but the schema's owner
-- reads or writes them directly (row-level security with no policy; the owner is exempt). The
-- trigger that queues a job runs as the owner, so whoever may change a job may queue it.
ALTER TABLE sisyphus.data_trigger_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE sisyphus.data_trigger_queue ENABLE ROW LEVEL SECURITY;
ALTER FUNCTION sisyphus.queue_data_trigger() SECURITY DEFINER SET search_path = pg_catalog, sisyphus;
REVOKE EXECUTE ON FUNCTION sisyphus.queue_data_trigger() FROM PUBLIC;
