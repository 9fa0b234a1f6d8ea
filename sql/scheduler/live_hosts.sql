-- Hosts that take new runs: live (recent heartbeat) and not draining.
SELECT name, pools FROM sisyphus.live_hosts WHERE NOT draining ORDER BY name
