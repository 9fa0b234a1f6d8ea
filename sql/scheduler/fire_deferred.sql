-- Fires the deferred triggers of the runs this step ended (interval rescheduling, outcome
-- notifications) now, inside the step's savepoint, so an error there belongs to the step and
-- not to the commit of the whole tick; later statements are deferred again.
SET CONSTRAINTS ALL IMMEDIATE
