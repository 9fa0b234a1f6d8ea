-- For a data-triggered job whose inputs are plain names: `newest`, the newest input's write
-- time (the job's watermark moves to it), and `slot`, the same time when every input is written
-- (and not expired) and was written after the job's last successful run began — else NULL:
-- nothing fresh. $1 job, $2 now.
SELECT max(r.written_at) AS newest,
       CASE WHEN bool_and(r.name IS NOT NULL AND (r.expires_at IS NULL OR r.expires_at > $2))
             AND min(r.written_at) > coalesce(
                     (SELECT max(x.started_at) FROM sisyphus.runs x
                       WHERE x.job_id = $1 AND x.status IN ('successful', 'uneventful')),
                     '-infinity')
            THEN max(r.written_at) END AS slot
  FROM sisyphus.jobs j
 CROSS JOIN unnest(j.inputs) AS t(name)
  LEFT JOIN sisyphus.resources r ON r.name = t.name
 WHERE j.id = $1
