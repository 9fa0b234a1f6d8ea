-- A new dashboard token for login $1: $2 its SHA-256 (the token itself never reaches the
-- database), $3 when it expires (NULL: never), $4 a label. Its id. One's own, or anyone's for
-- admins; one audit row.
SELECT sisyphus.create_token($1::name, $2::bytea, $3::timestamptz, $4::text)
