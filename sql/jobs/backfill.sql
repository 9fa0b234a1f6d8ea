-- Backfills a job's slots (migrations/0016_overlap_backfill.sql): queues those without a good
-- run or one in progress, and says for each slot (per host of an `all` job) what it found: new,
-- waiting, active or done, with the run. $1 project, $2 name, $3 from, $4 to (exclusive), $5 the
-- slots in [from, to) (the schedule's, from the cron evaluator), $6 at most this many, $7 dry run
-- (writes nothing).
SELECT slot, target_host, state, run_id
  FROM sisyphus.backfill($1, $2, $3, $4, $5::timestamptz[], $6, $7)
