-- Records a batch of outcomes in one statement (compare-and-set each; retries as finish_run does;
-- see sisyphus.finish_runs, migration 0020: one UPDATE for the batch, one wake-up at most).
-- $1 runs, $2 statuses, $3 exit codes, $4 signals, $5 summaries, $6 errors, $7 finished at.
-- Returns (run, recorded?) per outcome.
SELECT f.run, f.recorded
  FROM sisyphus.finish_runs($1::bigint[], $2::text[], $3::integer[], $4::integer[], $5::text[],
                            $6::text[], $7::timestamptz[]) f
