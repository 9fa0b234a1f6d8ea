-- The transaction's time: the one clock a whole apply reads.
SELECT now()
