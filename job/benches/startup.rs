//! The SDK's start-up with clap against the hand-written parser it replaced (issue 19): a copy of
//! the old parser lives here, in the bench only. Prints one table:
//!
//! - in process: parsing a command line into `Options` — the old parser against clap (building
//!   the job's `Command` with its defaults, then parsing), as `run()` does once per process;
//! - whole processes: this bench binary started again, parsing its flags with one parser or the
//!   other and exiting, or as a trivial standalone job (lock, fork, log file, links, health
//!   record) — the same binary, so the difference is the parser alone; the two alternate, run
//!   for run;
//! - with `--before OLD --after NEW`: the `testjob` example built from the commit before clap and
//!   from this one, the same trivial job (whole binaries: parser, size and loading).
//!
//! ```sh
//! cargo bench -p sisyphus-job --bench startup -- [--runs 200] [--before OLD --after NEW]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sisyphus_job::{standalone, Context, Error, Job, Options};

struct Trivial;

impl Job for Trivial {
    fn options(&self) -> Options {
        let mut o = Options::new("Bench", "Trivial");
        o.maxtime = Duration::from_secs(60);
        o
    }

    fn execute(&mut self, ctx: &Context) -> Result<Option<String>, Error> {
        ctx.log("working");
        Ok(Some("done".into()))
    }
}

/// A cron line as people write them: eight options, short and long, both value forms.
const FLAGS: &[&str] = &[
    "-m",
    "180",
    "--repeat=no",
    "-f",
    "yes",
    "--keepfilelogs",
    "30",
    "--compressfilelogs",
    "7",
    "--compressmode",
    "gzip",
    "--identifier",
    "nightly",
    "--proctitle",
    "yes",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Started by itself as the trivial job, `job-old|job-new FLAGS…`, or only to parse its
    // flags and exit, `parse-old|parse-new FLAGS…`.
    match args.first().map(String::as_str) {
        Some("job-new") => std::process::exit(sisyphus_job::run(Trivial, args[1..].to_vec())),
        // The first parse of a fresh process, timed inside it: printed in nanoseconds.
        Some("parse-new") => {
            let t = Instant::now();
            let mut options = Trivial.options();
            let command = sisyphus_job::command(&Trivial, &options);
            let parsed = options.command_line(command, args[1..].iter());
            let took = t.elapsed();
            if let Err(e) = parsed {
                let _ = e.print();
                std::process::exit(sisyphus_job::exit::USAGE);
            }
            println!("{}", took.as_nanos());
            std::process::exit(0);
        }
        Some("parse-old") => {
            let t = Instant::now();
            let mut options = Trivial.options();
            let parsed = old::apply_args(&mut options, args[1..].iter().cloned());
            let took = t.elapsed();
            if let Err(e) = parsed {
                eprintln!("{e}");
                std::process::exit(sisyphus_job::exit::USAGE);
            }
            println!("{}", took.as_nanos());
            std::process::exit(0);
        }
        Some("job-old") => {
            let mut job = Trivial;
            let mut options = job.options();
            if let Err(e) = old::apply_args(&mut options, args[1..].iter().cloned()) {
                eprintln!("{}/{}: {e}", options.projectname, options.jobname);
                std::process::exit(sisyphus_job::exit::USAGE);
            }
            std::process::exit(standalone::run(&mut job, &options));
        }
        _ => {}
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    // `cargo bench` passes --bench; `cargo test --benches` does not: then a quick smoke run.
    let default_runs = if args.iter().any(|a| a == "--bench") {
        200
    } else {
        3
    };
    let runs: usize = value("--runs")
        .and_then(|r| r.parse().ok())
        .unwrap_or(default_runs);
    let before = value("--before").map(PathBuf::from);
    let after = value("--after").map(PathBuf::from);
    // What the testjob example does when given as --before/--after: the trivial job's work.
    std::env::set_var("TESTJOB_SCRIPT", "log:working;done:done");
    if let Err(e) = bench(runs, before, after) {
        eprintln!("startup bench: {e}");
        std::process::exit(1);
    }
}

fn bench(runs: usize, before: Option<PathBuf>, after: Option<PathBuf>) -> Result<(), Error> {
    let none: &[&str] = &[];
    let mut rows = Vec::new();
    for (what, flags) in [("no flags", none), ("8 options", FLAGS)] {
        let old = per_call(|| {
            let mut o = Trivial.options();
            old::apply_args(&mut o, flags.iter().copied()).expect("old parser");
            o
        });
        let new = per_call(|| {
            let mut o = Trivial.options();
            let command = sisyphus_job::command(&Trivial, &o);
            o.command_line(command, flags.iter().copied())
                .expect("clap");
            o
        });
        // Both parsers must agree before their speed means anything.
        let (mut a, mut b) = (Trivial.options(), Trivial.options());
        old::apply_args(&mut a, flags.iter().copied())?;
        b.apply_args(flags.iter().copied())?;
        assert_eq!(a, b, "the two parsers disagree on {flags:?}");
        rows.push((
            format!("parse {what}: in process (median of 9 × 2,000)"),
            Some(old),
            new,
        ));
    }
    let exe = std::env::current_exe()?;
    let (old, new) = cold(runs, &exe)?;
    rows.push((
        format!("parse 8 options: the first parse in a fresh process, p50 of {runs}"),
        Some(old),
        new,
    ));
    let help = per_call(|| {
        let o = Trivial.options();
        sisyphus_job::command(&Trivial, &o)
            .render_help()
            .to_string()
    });
    rows.push(("render --help: in process".into(), None, help));

    let home = std::env::temp_dir().join(format!("sisyphus-startup-bench-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let base = home.to_string_lossy().into_owned();
    let job_flags = |mode: &str, extra: &[&str]| -> Vec<String> {
        let mut v = vec![mode.to_string(), "--basedir".into(), base.clone()];
        v.extend(FLAGS.iter().chain(extra).map(|s| s.to_string()));
        v
    };
    for (what, mode, extra) in [
        (
            "start, parse 8 options, exit: whole process (same binary)",
            "parse",
            none,
        ),
        ("trivial job run: whole process (same binary)", "job", none),
        (
            "--healthcheck yes: whole process (same binary)",
            "job",
            &["--healthcheck", "yes"][..],
        ),
    ] {
        let (old, new) = alternate(
            runs,
            &exe,
            &job_flags(&format!("{mode}-old"), extra),
            &exe,
            &job_flags(&format!("{mode}-new"), extra),
        )?;
        rows.push((format!("{what}, p50 of {runs}"), Some(old.0), new.0));
        rows.push((format!("{what}, p90 of {runs}"), Some(old.1), new.1));
    }
    let mut sizes = None;
    let mut rss = vec![(
        "start, parse 8 options, exit (same binary)",
        peak_rss(&exe, &job_flags("parse-old", none))?,
        peak_rss(&exe, &job_flags("parse-new", none))?,
    )];
    if let (Some(before), Some(after)) = (&before, &after) {
        let mut flags = vec!["--basedir".to_string(), base.clone()];
        flags.extend(FLAGS.iter().map(|s| s.to_string()));
        let (old, new) = alternate(runs, before, &flags, after, &flags)?;
        let what = "trivial job run: the testjob example before → after clap (whole binaries)";
        rows.push((format!("{what}, p50 of {runs}"), Some(old.0), new.0));
        rows.push((format!("{what}, p90 of {runs}"), Some(old.1), new.1));
        let job = "trivial job run: the testjob example before → after clap";
        rss.push((job, peak_rss(before, &flags)?, peak_rss(after, &flags)?));
        sizes = Some((
            std::fs::metadata(before)?.len(),
            std::fs::metadata(after)?.len(),
        ));
    }
    let (floor, _) = alternate(
        runs,
        Path::new("/bin/true"),
        &[],
        Path::new("/bin/true"),
        &[],
    )?;
    let _ = std::fs::remove_dir_all(&home);

    println!("SDK start-up: the hand-written parser (a copy in this bench) against clap\n");
    println!("| what | hand-written | clap | clap / hand-written |");
    println!("|---|---:|---:|---:|");
    for (what, old, new) in rows {
        match old {
            Some(old) => println!(
                "| {what} | {} | {} | {:.2}× |",
                show(old),
                show(new),
                new.as_secs_f64() / old.as_secs_f64()
            ),
            None => println!("| {what} | — | {} | |", show(new)),
        }
    }
    println!(
        "| /bin/true: whole process (the floor), p50 of {runs} | {} | | |",
        show(floor.0)
    );
    for (what, old, new) in rss {
        if let (Some(old), Some(new)) = (old, new) {
            println!(
                "| peak RSS, {what} (max of 20) | {:.2} MB | {:.2} MB | {:.2}× |",
                old as f64 / 1024.0,
                new as f64 / 1024.0,
                new as f64 / old as f64
            );
        }
    }
    if let Some((old, new)) = sizes {
        println!(
            "| testjob binary size | {:.2} MB | {:.2} MB | {:.2}× |",
            old as f64 / 1e6,
            new as f64 / 1e6,
            new as f64 / old as f64
        );
    }
    Ok(())
}

fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// The median over 9 batches of 2,000 calls, per call.
fn per_call<T>(mut f: impl FnMut() -> T) -> Duration {
    for _ in 0..200 {
        std::hint::black_box(f());
    }
    let mut batches: Vec<Duration> = (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..2000 {
                std::hint::black_box(f());
            }
            t.elapsed() / 2000
        })
        .collect();
    batches.sort();
    batches[4]
}

/// The highest peak resident set of 20 runs in KiB, from `/usr/bin/time` (None without it).
fn peak_rss(exe: &Path, args: &[String]) -> Result<Option<u64>, Error> {
    if !Path::new("/usr/bin/time").exists() {
        return Ok(None);
    }
    let mut peak = 0;
    for _ in 0..20 {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(exe)
            .args(args)
            .env_remove("SISYPHUS_RUN_ID")
            .stdout(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stderr);
        let kib: u64 = text.lines().last().unwrap_or_default().trim().parse()?;
        peak = peak.max(kib);
    }
    Ok(Some(peak))
}

/// The first parse in a fresh process (code not yet paged in, caches cold), as the process
/// itself timed it: old and new alternately, `runs` times each; the p50 of each.
fn cold(runs: usize, exe: &Path) -> Result<(Duration, Duration), Error> {
    let once = |mode: &str| -> Result<Duration, Error> {
        let out = Command::new(exe).arg(mode).args(FLAGS).output()?;
        let ns: u64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
        Ok(Duration::from_nanos(ns))
    };
    let (mut old, mut new) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        old.push(once("parse-old")?);
        new.push(once("parse-new")?);
    }
    old.sort();
    new.sort();
    Ok((old[runs / 2], new[runs / 2]))
}

/// The p50 and p90 of a series.
type Spread = (Duration, Duration);

/// Runs `a` and `b` alternately, `runs` times each, as whole processes; (p50, p90) of each.
fn alternate(
    runs: usize,
    a: &Path,
    a_args: &[String],
    b: &Path,
    b_args: &[String],
) -> Result<(Spread, Spread), Error> {
    let once = |exe: &Path, args: &[String]| -> Result<Duration, Error> {
        let t = Instant::now();
        let status = Command::new(exe)
            .args(args)
            .env_remove("SISYPHUS_RUN_ID")
            .env_remove("SISYPHUS_PROTOCOL_FD")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        let took = t.elapsed();
        if !status.success() {
            return Err(format!("{} {args:?}: {status}", exe.display()).into());
        }
        Ok(took)
    };
    // One of each first, unmeasured: the page cache and the job's directory.
    once(a, a_args)?;
    once(b, b_args)?;
    let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        ta.push(once(a, a_args)?);
        tb.push(once(b, b_args)?);
    }
    let pick = |mut v: Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 9 / 10])
    };
    Ok((pick(ta), pick(tb)))
}

/// The hand-written parser as it was before clap (job/src/options.rs at 4bf2dee), unchanged but
/// for living outside `Options`.
mod old {
    use std::path::PathBuf;
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use sisyphus_job::{NextRun, OptionError, Options};
    use sisyphus_notify::Secret;

    fn error(name: &str, problem: impl Into<String>) -> OptionError {
        OptionError {
            flag: format!("--{name}"),
            problem: problem.into(),
        }
    }

    /// Applies command-line flags over the fields, then checks the whole.
    pub fn apply_args<I, S>(o: &mut Options, args: I) -> Result<(), OptionError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let name = match flag.as_str() {
                "-p" => "projectname",
                "-j" => "jobname",
                "-m" => "maxtime",
                "-r" => "repeat",
                "-f" => "log2file",
                "-n" => "notify",
                f => f.strip_prefix("--").ok_or_else(|| OptionError {
                    flag: arg.clone(),
                    problem: "is not an option (options start with --)".into(),
                })?,
            };
            let value = match inline {
                Some(v) => v,
                None => args.next().ok_or_else(|| error(name, "needs a value"))?,
            };
            set(o, name, &value).map_err(|problem| error(name, problem))?;
        }
        o.check()
    }

    /// Sets one option from its text form.
    fn set(o: &mut Options, name: &str, v: &str) -> Result<(), String> {
        match name {
            "projectname" => o.projectname = v.to_string(),
            "jobname" => o.jobname = v.to_string(),
            "identifier" => o.identifier = Some(v.to_string()),
            "maxtime" => o.maxtime = seconds(v)?,
            "fork" => o.fork = flag(v)?,
            "noisykills" => o.noisykills = flag(v)?,
            "exit_on_error" => o.exit_on_error = flag(v)?,
            "repeat" => o.repeat = flag(v)?,
            "nextrun" => o.nextrun = Some(next_run(v)?),
            "healthcheck" => o.healthcheck = flag(v)?,
            "maxhealthcheckage" => o.maxhealthcheckage = Some(seconds(v)?),
            "log2file" => o.log2file = flag(v)?,
            "log2stdout" => o.log2stdout = flag(v)?,
            "log2stderr" => o.log2stderr = flag(v)?,
            "formatlogline" => o.formatlogline = Some(v.to_string()),
            "keepfilelogs" => o.keepfilelogs = Some(days(v)?),
            "compressfilelogs" => o.compressfilelogs = Some(days(v)?),
            "compressmode" => o.compressmode = v.parse()?,
            "encoding" => o.encoding = v.to_string(),
            "errors" => {
                if v != "strict" && v != "replace" {
                    return Err(format!(
                        "`{v}` is not an error handler; expected strict or replace"
                    ));
                }
            }
            "maxemailerrors" => o.maxemailerrors = number(v)?,
            "proctitle" => o.proctitle = flag(v)?,
            "basedir" => o.basedir = Some(PathBuf::from(v)),
            "notify" => o.notify = flag(v)?,
            "fromemail" => o.fromemail = Some(email(v)?),
            "toemail" => o.toemail = Some(email(v)?),
            "smtphost" => o.smtphost = Some(v.to_string()),
            "smtpport" => o.smtpport = number(v)?,
            "smtpuser" => o.smtpuser = Some(v.to_string()),
            "smtppassword" => o.smtppassword = Some(Secret::new(v)),
            "mattermost_url" => o.mattermost_url = Some(url(v)?),
            "mattermost_channel" => o.mattermost_channel = Some(v.to_string()),
            "mattermost_token" => o.mattermost_token = Some(Secret::new(v)),
            "sentry_dsn" => o.sentry_dsn = Some(Secret::new(sentry_dsn(v)?)),
            "sentry_environment" => o.sentry_environment = Some(v.to_string()),
            "sentry_release" => o.sentry_release = Some(v.to_string()),
            "sentry_debug" => o.sentry_debug = flag(v)?,
            _ => return Err("is not an option of this job".into()),
        }
        Ok(())
    }

    fn flag(v: &str) -> Result<bool, String> {
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(format!(
                "`{v}` is not a flag value; expected true, yes, 1, false, no or 0"
            )),
        }
    }

    fn seconds(v: &str) -> Result<Duration, String> {
        if let Ok(s) = v.trim().parse::<f64>() {
            return Duration::try_from_secs_f64(s)
                .map_err(|_| format!("`{v}` is not a number of seconds"));
        }
        humantime::parse_duration(v.trim())
            .map_err(|_| format!("`{v}` is not a number of seconds or a duration like 5m"))
    }

    fn days(v: &str) -> Result<Duration, String> {
        match v.trim().parse::<f64>() {
            Ok(d) => Duration::try_from_secs_f64(d * 86_400.0)
                .map_err(|_| format!("`{v}` is not a number of days")),
            Err(_) => humantime::parse_duration(v.trim())
                .map_err(|_| format!("`{v}` is not a number of days or a duration like 12h")),
        }
    }

    fn next_run(v: &str) -> Result<NextRun, String> {
        if let Ok(at) = DateTime::parse_from_rfc3339(v.trim()) {
            return Ok(NextRun::At(at.with_timezone(&Utc)));
        }
        seconds(v)
            .map(NextRun::After)
            .map_err(|_| format!("`{v}` is not seconds, a duration or an RFC 3339 instant"))
    }

    fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
        v.trim()
            .parse()
            .map_err(|_| format!("`{v}` is not a whole number in range"))
    }

    fn email(v: &str) -> Result<String, String> {
        match v.split_once('@') {
            Some((user, host)) if !user.is_empty() && host.contains('.') && !v.contains(' ') => {
                Ok(v.to_string())
            }
            _ => Err(format!("`{v}` is not an e-mail address")),
        }
    }

    fn url(v: &str) -> Result<String, String> {
        if (v.starts_with("http://") || v.starts_with("https://")) && v.len() > 8 {
            Ok(v.to_string())
        } else {
            Err(format!("`{v}` is not an http(s) URL"))
        }
    }

    fn sentry_dsn(v: &str) -> Result<String, String> {
        let rest = v
            .strip_prefix("https://")
            .or_else(|| v.strip_prefix("http://"));
        match rest.and_then(|r| r.split_once('@')) {
            Some((key, host)) if !key.is_empty() && host.contains('/') => Ok(v.to_string()),
            _ => Err(format!(
                "`{v}` is not a Sentry DSN (https://KEY@HOST/PROJECT)"
            )),
        }
    }
}
