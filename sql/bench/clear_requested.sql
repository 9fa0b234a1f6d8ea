-- Forgets the control request waiting for run $1, as its guardian does once it has acted.
UPDATE sisyphus.runs SET requested = NULL WHERE id = $1
