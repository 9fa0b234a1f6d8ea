-- Records a batch of outcomes in one statement (compare-and-set each; retries as finish_run does).
-- $1 runs, $2 statuses, $3 exit codes, $4 signals, $5 summaries, $6 errors, $7 finished at.
-- Returns (run, recorded?) per outcome.
-- The runs' resource names are serialised first, in one order (see serialise_run_names).
WITH names AS MATERIALIZED (SELECT sisyphus.serialise_run_names($1::bigint[]))
SELECT t.run, sisyphus.finish_run(t.run, '{running,suspended}', t.status::sisyphus.run_status, t.exit_code,
                                  t.signal, t.summary, t.error, t.finished_at)
  FROM names, unnest($1::bigint[], $2::text[], $3::integer[], $4::integer[], $5::text[], $6::text[], $7::timestamptz[])
       AS t(run, status, exit_code, signal, summary, error, finished_at)
