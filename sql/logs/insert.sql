-- Appends log lines of any runs in one statement. A line already stored (a replay from the spool
-- after a lost acknowledgement) is skipped by the primary key: no line twice.
INSERT INTO sisyphus.run_logs (run_id, seq, at, stream, tags, task, text)
SELECT t.run_id, t.seq, t.at, t.stream::sisyphus.log_stream, string_to_array(t.tags, ','), t.task, t.text
  FROM unnest($1::bigint[], $2::integer[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[])
       AS t(run_id, seq, at, stream, tags, task, text)
ON CONFLICT DO NOTHING
