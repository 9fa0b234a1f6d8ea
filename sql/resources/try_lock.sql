-- One attempt to take every lock holder $1 wants, all or none.
SELECT granted, waitable, reason FROM sisyphus.try_lock($1)
