-- Records a run's outcome (compare-and-set from running/suspended; retry in the same transaction).
-- $1 run, $2 status, $3 exit code, $4 signal, $5 summary, $6 error, $7 finished at.
SELECT sisyphus.finish_run($1, '{running,suspended}', $2::sisyphus.run_status, $3, $4, $5, $6, $7)
