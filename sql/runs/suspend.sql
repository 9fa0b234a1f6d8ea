-- Asks for a run to be suspended. $1 run id. Returns `cancelled` or `requested`.
SELECT sisyphus.suspend($1)
