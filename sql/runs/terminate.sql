-- Asks for a run to be terminated. $1 run id. Returns `cancelled` or `requested`.
SELECT sisyphus.terminate($1)
