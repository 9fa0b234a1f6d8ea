-- One round-trip baseline transaction: adds one to counter $1.
UPDATE bench_counter SET v = v + 1 WHERE id = $1
