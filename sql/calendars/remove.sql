-- Removes a calendar (admins only; an audit row `calendar.remove`); refused, naming the jobs,
-- while a job's skip_on or only_on names it. $1 name. Returns whether there was one.
SELECT sisyphus.remove_calendar($1)
