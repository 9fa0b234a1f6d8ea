-- The database's clock: the scheduler's `now` when the caller does not pin one.
SELECT clock_timestamp()
