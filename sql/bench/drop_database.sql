-- The statement that drops database $1 if it exists, its name quoted by PostgreSQL (a
-- database's name cannot be a parameter, and DROP DATABASE cannot run inside a function).
SELECT format('DROP DATABASE IF EXISTS %I', $1::text)
