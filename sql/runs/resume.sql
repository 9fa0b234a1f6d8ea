-- Asks for a suspended run to go on. $1 run id. Returns `requested`.
SELECT sisyphus.resume($1)
