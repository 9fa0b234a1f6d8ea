-- The start of today: the data-triggers bench's first day.
SELECT date_trunc('day', now())
