-- Begins a transaction whose snapshot is taken at its first statement and held to its end.
BEGIN ISOLATION LEVEL REPEATABLE READ
