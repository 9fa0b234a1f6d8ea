-- Registers what a holder wants, adding to an earlier request; takes no lock.
-- $1 holder, $2 owner, $3 inputs, $4 outputs, $5 lease, $6 outputs' expiry or NULL.
SELECT sisyphus.request_lock($1, $2, $3, $4, $5, $6)
