-- Gives the calendar bench's jobs calendars and overlap policies by their place among the due
-- ones (make_due makes every $1-th job due): of every ten consecutive steps of $1 ids, one job
-- skips on `freeze` (today and tomorrow: each of its slots is skipped), one on `holidays`
-- (days that are neither: planned as usual after the look), and two have overlap `skip`. So
-- 20% of all jobs, and of the due ones, use calendars and 20% the `skip` policy.
UPDATE sisyphus.jobs
   SET skip_on = CASE (id / $1::bigint) % 10
                      WHEN 0 THEN '{freeze}'::text[]
                      WHEN 1 THEN '{holidays}'::text[]
                      ELSE skip_on END,
       overlap = CASE WHEN (id / $1::bigint) % 10 IN (2, 7) THEN 'skip' ELSE overlap END
