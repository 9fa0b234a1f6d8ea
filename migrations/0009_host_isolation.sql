-- How a host holds the processes of its runs (issue 13): in a cgroup per run, which also holds
-- what left the process group with setsid, or in a process group alone (no writable cgroup v2
-- directory on that host). Written by the guardian when it registers; shown by `sisyctl hosts`.
ALTER TABLE sisyphus.hosts
    ADD COLUMN isolation text NOT NULL DEFAULT 'process-group'
        CHECK (isolation IN ('cgroup', 'process-group'));
