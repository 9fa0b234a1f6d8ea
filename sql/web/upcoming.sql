-- Unpaused jobs due before $1, soonest first (the Overview's "upcoming"); also those whose due
-- time is already past.
SELECT j.id, j.project || '/' || j.name AS job, j.next_slot
  FROM sisyphus.jobs j
 WHERE j.next_slot IS NOT NULL AND NOT j.paused AND j.next_slot < $1::timestamptz
 ORDER BY j.next_slot
 LIMIT 100
