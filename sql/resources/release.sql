-- Ends holder $1; with $2, writes its outputs. Returns how many were written and why not.
SELECT written, reason FROM sisyphus.release_lock($1, $2)
