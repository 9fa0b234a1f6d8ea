-- Run $1 once it has ended: its status, summary, seconds from due to recorded (the database's
-- clock), seconds its process ran, and how many job lines (`sdk`) it stored. No row before.
SELECT r.status::text, r.summary,
       extract(epoch FROM r.finished_at - r.scheduled_for)::float8,
       coalesce(extract(epoch FROM r.finished_at - r.started_at)::float8, 0),
       (SELECT count(*) FROM sisyphus.run_logs l WHERE l.run_id = r.id AND l.stream = 'sdk')
  FROM sisyphus.runs r
 WHERE r.id = $1 AND r.finished_at IS NOT NULL
