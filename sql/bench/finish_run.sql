-- Gives run $1 the outcome $2 (a run_status label), started and finished now, as a guardian's
-- outcome does.
UPDATE sisyphus.runs SET status = $2::sisyphus.run_status, started_at = now(),
       finished_at = now() WHERE id = $1
