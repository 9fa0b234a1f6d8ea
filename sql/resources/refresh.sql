-- Extends holder $1's leases; false when one lapsed and was taken over.
SELECT sisyphus.refresh_lock($1)
