-- The statement that creates database $1, its name quoted by PostgreSQL (a database's name
-- cannot be a parameter, and CREATE DATABASE cannot run inside a function).
SELECT format('CREATE DATABASE %I', $1::text)
