-- Ends the transaction that held the snapshot.
COMMIT
