// graphile-worker's side of `sisyphus-bench peers`: inserts N no-op jobs up front into a fresh
// database, then times one worker pool draining them (from `run()` until the jobs table is
// empty), as the Sisyphus drain inserts pending runs and times guardians.
//
// node graphile-drain.mjs <url> <jobs> <concurrency> <unbatched|batched>
// Prints one line of JSON: {"jobs": N, "seconds": S}.
import pg from "pg";
import { Logger, run, runMigrations } from "graphile-worker";

const [url, jobsArg, concurrencyArg, mode] = process.argv.slice(2);
const jobs = Number(jobsArg);
const concurrency = Number(concurrencyArg);
if (!url || !(jobs > 0) || !(concurrency > 0) || !["unbatched", "batched"].includes(mode)) {
  console.error("usage: graphile-drain.mjs <url> <jobs> <concurrency> <unbatched|batched>");
  process.exit(2);
}

// Batched: the local queue (jobs fetched and locked in batches by the pool) and batched
// completions, as graphile-worker's performance page describes.
const worker =
  mode === "batched"
    ? { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
    : {};
const preset = { worker: { connectionString: url, concurrentJobs: concurrency, ...worker } };
const logger = new Logger(() => () => {});

await runMigrations({ connectionString: url, logger });
const client = new pg.Client({ connectionString: url });
await client.connect();
await client.query(
  // One add_jobs call (a loop of add_job in one statement takes a minute for 20,000).
  `SELECT graphile_worker.add_jobs(ARRAY(
     SELECT ROW('noop', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
       FROM generate_series(1, $1::int)))`,
  [jobs],
);
await client.query("VACUUM ANALYZE graphile_worker._private_jobs");

let done = 0;
const started = process.hrtime.bigint();
const runner = await run({
  connectionString: url,
  concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  logger,
  preset,
  taskList: {
    noop: async () => {
      done += 1;
    },
  },
});
for (;;) {
  const { rows } = await client.query(
    "SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs) AS busy",
  );
  if (!rows[0].busy) break;
  await new Promise((r) => setTimeout(r, 20));
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ jobs: done, seconds }));
// Not `runner.stop()`: it can wait a minute for idle pool connections; the database is dropped
// after this anyway.
void runner;
process.exit(0);
