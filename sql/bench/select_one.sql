-- The smallest round trip: the baseline most bench figures are a ratio to.
SELECT 1
