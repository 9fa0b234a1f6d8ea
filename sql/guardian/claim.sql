-- Claims due runs for this host and returns what the guardian needs to start them.
-- $1 host, $2 pools, $3 how many, $4 lease.
SELECT * FROM sisyphus.claim_runs($1, $2, $3, $4::interval)
