-- Creates login $1 (or, when it exists, sets its password) with password $2 (NULL: none, and an
-- existing one is kept) for kind $3 (user, admin, guardian, scheduler, dispatcher); a guardian is
-- bound to host names $4. Admins only; one audit row.
SELECT sisyphus.add_login($1::name, $2::text, $3::text, $4::text[])
