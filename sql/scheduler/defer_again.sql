-- See fire_deferred.sql.
SET CONSTRAINTS ALL DEFERRED
