-- Jobs with a slot due by the horizon, oldest first, locked for this tick. Served by the partial
-- index `jobs_due`, so the cost grows with due jobs, not defined ones. A job marked with a
-- scheduler error is held back until $3 has passed its mark (it is tried again then, or at once
-- when its definition changes, which clears the mark). $1: horizon, $2: batch, $3: marks older
-- than this are tried again.
 WHERE next_slot <= $1 AND NOT paused
   AND (scheduler_error_at IS NULL OR scheduler_error_at <= $3)
 ORDER BY next_slot
 LIMIT $2
 FOR UPDATE SKIP LOCKED
