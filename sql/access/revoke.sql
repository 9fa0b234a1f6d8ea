-- Takes back login $1's grant on pattern $2; false when it held none. Admins only; one audit row.
SELECT sisyphus.revoke_access($1::name, $2::text)
