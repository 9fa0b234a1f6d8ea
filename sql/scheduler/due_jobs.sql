-- Jobs with a slot due by the horizon, oldest first, locked for this tick. Served by the partial
-- index `jobs_due`, so the cost grows with due jobs, not defined ones. $1: horizon, $2: batch.
 WHERE next_slot <= $1 AND NOT paused
 ORDER BY next_slot
 LIMIT $2
 FOR UPDATE SKIP LOCKED
