-- Runs in cgroups (issue 13). How a host holds the processes of its runs: in a cgroup per run, which also holds
-- what left the process group with setsid, or in a process group alone (no writable cgroup v2
-- directory on that host). Written by the guardian when it registers; shown by `sisyctl hosts`.
ALTER TABLE sisyphus.hosts
    ADD COLUMN isolation text NOT NULL DEFAULT 'process-group'
        CHECK (isolation IN ('cgroup', 'process-group'));

-- Limits a run's cgroup gets where the host delegates the controller (memory.max, cpu.weight);
-- NULL: no limit. Ranges as the kernel takes them.
ALTER TABLE sisyphus.jobs
    ADD COLUMN memory_max bigint CHECK (memory_max >= 4096),
    ADD COLUMN cpu_weight integer CHECK (cpu_weight BETWEEN 1 AND 10000);
