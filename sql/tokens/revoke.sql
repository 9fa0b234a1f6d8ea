-- Revokes token $1; false when there is no such live token. One's own, or anyone's for admins.
SELECT sisyphus.revoke_token($1::bigint)
