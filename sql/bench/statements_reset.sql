-- Forgets every statement's statistics counted so far (pg_stat_statements).
SELECT pg_stat_statements_reset()::text
