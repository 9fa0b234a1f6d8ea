-- Forgets every statement's statistics (the drain's own are read after it).
SELECT pg_stat_statements_reset()
