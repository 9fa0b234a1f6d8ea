-- Stops ($2 true) or restarts ($2 false) new claims on host $1.
SELECT sisyphus.drain_host($1, $2)
