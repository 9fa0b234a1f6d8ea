-- One job by id (appended to sql/jobs/columns.sql). $1: id.
 WHERE id = $1
