-- Control requests waiting for this host's runs. $1 host.
SELECT id, requested FROM sisyphus.runs
 WHERE host = $1 AND status IN ('running', 'suspended') AND requested IS NOT NULL
