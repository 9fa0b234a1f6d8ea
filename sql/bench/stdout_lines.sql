-- Lines run $1 printed on stdout, as stored.
SELECT count(*) FROM sisyphus.run_logs WHERE run_id = $1 AND stream = 'stdout'
