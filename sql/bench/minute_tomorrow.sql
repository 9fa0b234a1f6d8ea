-- The start of the current minute a day from now: the scheduler bench's first pinned `now`.
SELECT date_trunc('minute', now()) + interval '1 day'
