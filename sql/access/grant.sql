-- Gives login $1 the level $2 (viewer, operator or editor) on the projects pattern $3 matches
-- (`ACME.FooBar`, `ACME.*`, `*`), replacing its level there. Admins only; one audit row.
SELECT sisyphus.grant_access($1::name, $2::text, $3::text)
