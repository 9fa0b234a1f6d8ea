//! Values with limits (issue 13): every duration and count of a definition has a range, checked
//! with checked arithmetic at validation; text PostgreSQL cannot hold (NUL) is refused naming
//! the field; intervals convert without wrapping. Pure: no database.

use std::time::Duration;

use sisyphus_client::spec::{MAX_COUNT, MAX_DURATION};
use sisyphus_client::{jobsfile, Error, JobSpec};

/// Every duration key, with what a job needs beside it to be valid otherwise.
const DURATION_KEYS: &[(&str, &str)] = &[
    ("interval", ""),
    ("ttl", ""),
    ("jitter", ""),
    ("maxtime", ""),
    ("retry_backoff", ""),
    ("keep_logs", ""),
    ("compress_logs", ""),
    ("lock_lease", "outputs = [\"x\"]\n"),
    ("lock_wait", "outputs = [\"x\"]\n"),
    ("outputs_expire", "outputs = [\"x\"]\n"),
    ("max_health_age", ""),
    ("warn_after", ""),
    ("min_duration", ""),
];

/// The keys that may be zero.
const ZERO_ALLOWED: &[&str] = &["jitter", "retry_backoff", "lock_wait"];

fn job(extra: &str) -> String {
    format!("[[job]]\nproject = \"ACME\"\nname = \"j\"\ncommand = [\"true\"]\n{extra}")
}

fn check(extra: &str) -> Result<JobSpec, Error> {
    jobsfile::parse(&job(extra), "jobs.toml").map(|mut jobs| jobs.remove(0))
}

/// The problems of a refused job, as `field: problem` lines.
fn refused(extra: &str) -> String {
    match check(extra) {
        Ok(spec) => panic!("accepted {extra:?}: {spec:?}"),
        Err(Error::Invalid(jobs)) => jobs
            .iter()
            .flat_map(|j| j.problems.iter())
            .map(|p| format!("{}: {}", p.field, p.problem))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(other) => format!("(not a field error) {other}"),
    }
}

fn assert_names(extra: &str, field: &str, words: &str) {
    let problems = refused(extra);
    assert!(
        problems
            .lines()
            .any(|l| l.starts_with(&format!("{field}: ")) && l.contains(words)),
        "{extra:?}: expected `{field}` with `{words}`, got:\n{problems}"
    );
}

#[test]
fn the_reported_absurd_durations_are_refused_not_wrapped() {
    // 18446744073712 s is 2^64 µs + 2.448 s: it used to wrap to 2.4 s.
    assert_names(
        "maxtime = \"18446744073712s\"",
        "maxtime",
        "longer than 100years",
    );
    for key in ["ttl", "interval", "jitter", "keep_logs"] {
        assert_names(
            &format!("{key} = \"99999999999h\""),
            key,
            "longer than 100years",
        );
    }
    assert_names(
        "retries = 3\nretry_backoff = \"5000000000h\"",
        "retry_backoff",
        "longer than 100years",
    );
    // Beyond what humantime itself can count.
    assert_names(
        "ttl = \"99999999999999999999999999s\"",
        "ttl",
        "longer than 100years",
    );
    // Seconds as a TOML number, and a float that saturates.
    assert_names("maxtime = 18446744073712", "maxtime", "longer than");
    assert_names("maxtime = 1e300", "maxtime", "longer than");
}

#[test]
fn every_duration_key_has_the_same_range() {
    for (key, needs) in DURATION_KEYS {
        let at_most = check(&format!("{needs}{key} = \"100years\""));
        assert!(at_most.is_ok(), "{key} = 100years: {at_most:?}");
        assert_names(
            &format!("{needs}{key} = \"100years 1us\""),
            key,
            "longer than 100years",
        );
        assert_names(&format!("{needs}{key} = \"-1s\""), key, "");
        let zero = check(&format!("{needs}{key} = \"0s\""));
        assert_eq!(
            zero.is_ok(),
            ZERO_ALLOWED.contains(key),
            "{key} = 0s: {zero:?}"
        );
    }
    assert_eq!(MAX_DURATION, Duration::from_secs(3_155_760_000));
    let spec = check("maxtime = \"100years\"\nretry_backoff = \"1.5s\"").expect("valid");
    assert_eq!(spec.maxtime, Some(MAX_DURATION));
}

#[test]
fn counts_fit_an_integer() {
    assert_names("retries = 4294967295", "retries", "more than 2147483647");
    assert_names(
        "concurrency = 2147483648",
        "concurrency",
        "more than 2147483647",
    );
    assert_names(
        "iterations = 9223372036854775807",
        "iterations",
        "more than 2147483647",
    );
    assert_names("iterations = 0", "iterations", "less than 1");
    assert_names("concurrency = 0", "concurrency", "less than 1");
    assert_names("retries = -1", "retries", "less than 0");
    let spec = check("retries = 2147483647\nconcurrency = 2147483647\niterations = 2147483647")
        .expect("the largest counts are valid");
    assert_eq!(
        (spec.retries, spec.concurrency, spec.iterations),
        (MAX_COUNT, MAX_COUNT, Some(MAX_COUNT))
    );
    let spec = check("retries = 0").expect("zero retries");
    assert_eq!(spec.retries, 0);
}

#[test]
fn a_nul_in_any_text_is_refused_naming_the_field() {
    // (keys, field): TOML's \u0000 puts a NUL into the string.
    let cases: &[(&str, &str)] = &[
        (r#"command = ["echo", "a\u0000b"]"#, "command"),
        ("env = { A = \"x\\u0000y\" }", "env"),
        ("env = { \"A\\u0000\" = \"x\" }", "env"),
        ("workdir = \"/tmp/\\u0000\"", "workdir"),
        ("timezone = \"UTC\\u0000\"", "timezone"),
        ("cron = \"* * * * *\\u0000\"", "cron"),
        ("interval = \"5m\\u0000\"", "interval"),
        ("at = \"2030-01-01\\u0000\"", "at"),
        ("start = \"2030-01-01\\u0000\"", "start"),
        ("end = \"2030-01-01\\u0000\"", "end"),
        ("ttl = \"1h\\u0000\"", "ttl"),
        ("catchup = \"all\\u0000\"", "catchup"),
        ("target = \"pool\\u0000\"", "target"),
        ("run_as = \"nobody\\u0000\"", "run_as"),
        ("compress_mode = \"xz\\u0000\"", "compress_mode"),
        ("inputs = [\"a\\u0000\"]", "inputs"),
        ("outputs = [\"a\\u0000\"]", "outputs"),
        ("userdata = { a = [\"x\\u0000\"] }", "userdata"),
        ("userdata = { \"k\\u0000\" = 1 }", "userdata"),
        ("notify = [{ channel = \"c\\u0000\" }]", "notify"),
        (
            "notify = [{ channel = \"c\", to = [\"a\\u0000@b\"] }]",
            "notify",
        ),
        (
            "notify = [{ channel = \"c\", on = [\"failed\\u0000\"] }]",
            "notify",
        ),
    ];
    for (keys, field) in &cases[1..] {
        assert_names(keys, field, "");
    }
    let text = job("").replace(r#"command = ["true"]"#, cases[0].0);
    let Err(Error::Invalid(jobs)) = jobsfile::parse(&text, "jobs.toml") else {
        panic!("a NUL in the command was accepted");
    };
    assert!(jobs[0].names("command"), "{jobs:?}");
    assert_names("userdata = { a = { b = \"\\u0000\" } }", "userdata", "NUL");
    for (key, field) in [("project", "project"), ("name", "name")] {
        let text = job("").replacen(&format!("{key} = \""), &format!("{key} = \"x\\u0000"), 1);
        let Err(Error::Invalid(jobs)) = jobsfile::parse(&text, "jobs.toml") else {
            panic!("{key} with a NUL was accepted");
        };
        assert!(jobs[0].names(field), "{jobs:?}");
    }
}

#[test]
fn project_sections_are_named_like_projects() {
    let text = format!("{}\n[projects.\"bad name!\"]\nnotify = []\n", job(""));
    match jobsfile::parse_all(&text, "jobs.toml") {
        Err(Error::JobsFile { message, .. }) => {
            assert!(message.contains("bad name!"), "{message}");
            assert!(message.contains("dot-separated"), "{message}");
        }
        other => panic!("accepted: {:?}", other.map(|c| c.projects)),
    }
    for bad in ["", "a..b", ".a", "x\\u0000"] {
        let text = format!("[projects.\"{bad}\"]\nnotify = []\n");
        assert!(
            jobsfile::parse_all(&text, "jobs.toml").is_err(),
            "project `{bad}` accepted"
        );
    }
    let good = format!("{}\n[projects.\"ACME.Foo-Bar_2\"]\nnotify = []\n", job(""));
    let checked = jobsfile::parse_all(&good, "jobs.toml").expect("a good project name");
    assert_eq!(checked.projects[0].project, "ACME.Foo-Bar_2");
}

#[test]
fn non_finite_seconds_are_refused() {
    for v in ["inf", "-inf", "nan"] {
        match check(&format!("maxtime = {v}")) {
            Err(Error::JobsFile { message, .. }) => {
                assert!(message.contains("not a number of seconds"), "{message}")
            }
            other => panic!("maxtime = {v}: {other:?}"),
        }
    }
    assert_names("jitter = -0.5", "jitter", "negative");
}

/// `memory_max` takes bytes or a size with a binary unit, from a page to 1 PiB; `cpu_weight`
/// takes the kernel's 1 to 10000.
#[test]
fn run_limits_have_ranges() {
    let spec = check("memory_max = \"512M\"\ncpu_weight = 50\n").expect("valid limits");
    assert_eq!(spec.limits.memory_max, Some(512 << 20));
    assert_eq!(spec.limits.cpu_weight, Some(50));
    let spec = check("memory_max = 1048576\n").expect("bytes");
    assert_eq!(spec.limits.memory_max, Some(1 << 20));
    assert_eq!(
        check("memory_max = \"2GiB\"\n")
            .expect("GiB")
            .limits
            .memory_max,
        Some(2 << 30)
    );
    assert_names("memory_max = \"12X\"\n", "memory_max", "unknown unit");
    assert_names("memory_max = \"lots\"\n", "memory_max", "not a size");
    assert_names("memory_max = 100\n", "memory_max", "less than 4096");
    assert_names("memory_max = -1\n", "memory_max", "negative");
    assert_names("memory_max = \"2048T\"\n", "memory_max", "more than 1P");
    assert_names(
        "memory_max = \"99999999999999999999G\"\n",
        "memory_max",
        "not a size",
    );
    assert_names("cpu_weight = 0\n", "cpu_weight", "not within 1 to 10000");
    assert_names(
        "cpu_weight = 10001\n",
        "cpu_weight",
        "not within 1 to 10000",
    );
}
