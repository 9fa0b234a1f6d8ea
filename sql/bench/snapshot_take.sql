-- Takes the REPEATABLE READ snapshot (its first statement): from here on, vacuum can remove no
-- row version deleted after it.
SELECT count(*) FROM sisyphus.runs
