-- Makes the current transaction read-only: a plan (`apply --plan`) reads what apply would read
-- and can write nothing, whatever it runs.
SET TRANSACTION READ ONLY
