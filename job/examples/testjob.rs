//! A scriptable job for the SDK's tests: `TESTJOB_SCRIPT` is a `;`-separated list of steps,
//! each `action` or `action:argument`:
//!
//! - `log:TEXT`, `tagged:T1,T2:TEXT`, `delay:TEXT` (tag `delay`), `error:TEXT` (an error with a
//!   cause, logged with `exc`);
//! - `items:A,B,C` — a task per item (type `item`), logging `processing X` in each;
//! - `tasked:T1,T2:TEXT` — a tagged line inside two nested tasks (`[1/1] volume data`,
//!   `[2/2] check space`);
//! - `sleep:SECONDS`; `sigint` (the process interrupts itself); `panic:TEXT`;
//! - `userdata:JSON`;
//! - `fail:TEXT` (execute returns that error), `done:SUMMARY` (successful), `nothing`
//!   (uneventful). Without one of these the run is uneventful.
//!
//! `TESTJOB_HEALTH`, when set, is what the job's own `healthcheck()` reports; `TESTJOB_VERSION`,
//! when set, the job's version (`--version`), else the SDK's.
//! Flags work as for any job (`--maxtime 1`, `--basedir DIR`, …).

use std::time::Duration;

use sisyphus_job::{execute_with_args, Context, Error, Job, Options};

struct TestJob;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String, #[source] Option<std::io::Error>);

impl Job for TestJob {
    fn options(&self) -> Options {
        let mut o = Options::new("Test", "job");
        o.maxtime = Duration::from_secs(60);
        o
    }

    fn execute(&mut self, ctx: &Context) -> Result<Option<String>, Error> {
        let script = std::env::var("TESTJOB_SCRIPT").unwrap_or_default();
        for step in script.split(';').filter(|s| !s.is_empty()) {
            let (action, arg) = step.split_once(':').unwrap_or((step, ""));
            match action {
                "log" => ctx.log(arg),
                "tagged" => {
                    let (tags, text) = arg.split_once(':').unwrap_or((arg, ""));
                    let mut tagged = ctx.tag("test");
                    for t in tags.split(',') {
                        tagged = tagged.tag(t);
                    }
                    tagged.log(text);
                }
                "tasked" => {
                    let (tags, text) = arg.split_once(':').unwrap_or((arg, ""));
                    let _volume = ctx.task("volume", "data", Some(0), Some(1));
                    let _check = ctx.task("check", "space", Some(1), Some(2));
                    let mut tagged = ctx.tag("test");
                    for t in tags.split(',') {
                        tagged = tagged.tag(t);
                    }
                    tagged.log(text);
                }
                "delay" => ctx.tag("delay").log(arg),
                "error" => ctx.log_error(&Failure(
                    arg.into(),
                    Some(std::io::Error::other("the cause")),
                )),
                "items" => {
                    for item in ctx.tasks(arg.split(',').collect::<Vec<_>>(), "item", |i| {
                        i.to_string()
                    }) {
                        ctx.log(format!("processing {item}"));
                    }
                }
                "sleep" => std::thread::sleep(Duration::from_secs_f64(arg.parse().unwrap_or(1.0))),
                "sigint" => {
                    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT);
                    std::thread::sleep(Duration::from_secs(5));
                }
                "panic" => panic!("{arg}"),
                "userdata" => ctx.set_userdata(serde_json::from_str(arg)?),
                "fail" => return Err(Box::new(Failure(arg.into(), None))),
                "done" => return Ok(Some(arg.to_string())),
                "nothing" => return Ok(None),
                other => return Err(format!("unknown test step `{other}`").into()),
            }
        }
        Ok(None)
    }

    fn healthcheck(&mut self) -> Option<String> {
        std::env::var("TESTJOB_HEALTH").ok()
    }

    fn description(&self) -> Option<String> {
        Some("a scriptable job for the SDK's tests (TESTJOB_SCRIPT)".into())
    }

    fn version(&self) -> Option<String> {
        std::env::var("TESTJOB_VERSION").ok()
    }
}

fn main() {
    execute_with_args(TestJob)
}
