-- Ends every pending scheduled run that is due as successful, started and finished now: what the
-- guardians would have done between two ticks (the calendar bench, outside its timing).
UPDATE sisyphus.runs SET status = 'successful', host = 'bench', started_at = now(),
       finished_at = now()
 WHERE status = 'pending' AND trigger = 'schedule' AND scheduled_for <= now()
