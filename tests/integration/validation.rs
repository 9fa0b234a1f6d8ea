//! Invariant `refused-before-written`: a bad definition is refused before anything is written, with a message that
//! names the field and the problem — through `sisyctl apply` and through the Rust client alike.

use std::time::Duration;

use sisyphus_client::spec::SpecFields;
use sisyphus_client::spec::Text;
use sisyphus_client::{Error, JobDefinition, JobRef, JobSpec};

use crate::harness::{jobs_file, stderr, TestDb};

/// A good job that shares the file with the bad one: it must not be applied either.
const GOOD: &str = r#"
[[job]]
project = "ACME.Good"
name = "fine"
command = ["true"]
cron = "* * * * *"
"#;

/// (bad job's extra keys, field the message must name, words it must contain)
const CASES: &[(&str, &str, &str)] = &[
    (
        r#"command = ["true"]
cron = "61 * * * *""#,
        "cron",
        "minute field `61`: 61 is out of range 0-59",
    ),
    (
        r#"command = ["true"]
cron = "* * * * mon-funday""#,
        "cron",
        "day-of-week",
    ),
    (
        r#"command = ["true"]
cron = "*/5 * * * *"
timezone = "Mars/Olympus_Mons""#,
        "timezone",
        "unknown time zone `Mars/Olympus_Mons`",
    ),
    (
        r#"command = []
cron = "*/5 * * * *""#,
        "command",
        "is empty",
    ),
    (
        r#"command = [""]"#,
        "command",
        "program (first element) is empty",
    ),
    (r#"command = "echo hi""#, "command", "set shell = true"),
    (
        r#"command = ["true"]
maxtime = "0s""#,
        "maxtime",
        "must be more than zero",
    ),
    (
        r#"command = ["true"]
maxtime = -5"#,
        "maxtime",
        "must be more than zero",
    ),
    (
        r#"command = ["true"]
maxtime = "soon""#,
        "maxtime",
        "is not a duration",
    ),
    (
        r#"command = ["true"]
start = 2026-06-01T00:00:00Z
end = 2026-05-01T00:00:00Z"#,
        "end",
        "is not after start",
    ),
    (
        r#"command = ["true"]
cron = "* * * * *"
interval = "5m""#,
        "interval",
        "one schedule",
    ),
    (
        r#"command = ["true"]
catchup = "sometimes""#,
        "catchup",
        "expected one of: all, latest, none",
    ),
    (
        r#"command = ["true"]
concurrency = 0"#,
        "concurrency",
        "less than 1",
    ),
    (
        r#"command = ["true"]
retries = -1"#,
        "retries",
        "less than 0",
    ),
    (
        r#"command = ["true"]
workdir = "relative/dir""#,
        "workdir",
        "must be an absolute path",
    ),
    (
        r#"command = ["true"]
target = "all:""#,
        "target",
        "pool",
    ),
    (
        r#"command = ["true"]
at = "tomorrow-ish""#,
        "at",
        "is not a time",
    ),
    (
        r#"command = ["true"]
userdata = 5"#,
        "userdata",
        "must be a table",
    ),
    (
        r#"command = ["true"]
inputs = ["events.{week}"]"#,
        "inputs",
        "unknown placeholder `{week}`",
    ),
    (
        r#"command = ["true"]
outputs = ["two words"]"#,
        "outputs",
        "whitespace",
    ),
    (
        r#"command = ["true"]
inputs = ["a"]
outputs = ["a"]"#,
        "outputs",
        "both an input and an output",
    ),
    (
        r#"command = ["true"]
on_inputs = true"#,
        "on_inputs",
        "needs at least one input",
    ),
    (
        r#"command = ["true"]
on_inputs = true
inputs = ["hourly.{hour}"]"#,
        "inputs",
        "must name the date",
    ),
    (
        r#"command = ["true"]
on_inputs = true
inputs = ["x.{date}"]
target = "all""#,
        "on_inputs",
        "must be `any`",
    ),
    (
        r#"command = ["true"]
outputs = ["x"]
lock_lease = "1s""#,
        "lock_lease",
        "shorter than 5s",
    ),
    (
        r#"command = ["true"]
outputs = ["x"]
outputs_expire = "0s""#,
        "outputs_expire",
        "must be more than zero",
    ),
    // Issue 13: absurd values are refused at validation, never wrapped or stored raw.
    (
        r#"command = ["true"]
maxtime = "18446744073712s""#,
        "maxtime",
        "longer than 100years",
    ),
    (
        r#"command = ["true"]
ttl = "99999999999h""#,
        "ttl",
        "longer than 100years",
    ),
    (
        r#"command = ["true"]
interval = "99999999999h""#,
        "interval",
        "longer than 100years",
    ),
    (
        r#"command = ["true"]
jitter = "99999999999h""#,
        "jitter",
        "longer than 100years",
    ),
    (
        r#"command = ["true"]
keep_logs = "99999999999h""#,
        "keep_logs",
        "longer than 100years",
    ),
    (
        r#"command = ["true"]
retries = 3
retry_backoff = "5000000000h""#,
        "retry_backoff",
        "longer than 100years",
    ),
    (
        r#"command = ["true"]
retries = 4294967295"#,
        "retries",
        "more than 2147483647",
    ),
    (
        r#"command = ["true"]
concurrency = 2147483648"#,
        "concurrency",
        "more than 2147483647",
    ),
    (r#"command = ["printf", "a\u0000b"]"#, "command", "NUL"),
    (
        r#"command = ["true"]
env = { SECRET = "a\u0000b" }"#,
        "env",
        "NUL",
    ),
    (
        r#"command = ["true"]
workdir = "/tmp/\u0000""#,
        "workdir",
        "NUL",
    ),
    (
        r#"command = ["true"]
userdata = { note = "a\u0000b" }"#,
        "userdata",
        "NUL",
    ),
];

#[tokio::test]
async fn every_bad_field_is_named_and_nothing_is_written() {
    let db = TestDb::new().await;
    for (extra, field, words) in CASES {
        let file = jobs_file(&format!(
            "{GOOD}\n[[job]]\nproject = \"ACME.Bad\"\nname = \"bad\"\n{extra}\n"
        ));
        let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{field}: exit code; stderr: {err}"
        );
        assert!(
            err.contains(&format!("field `{field}`")),
            "{field}: message does not name the field: {err}"
        );
        assert!(
            err.contains(words),
            "{field}: message lacks `{words}`: {err}"
        );
        assert!(
            err.contains("ACME.Bad/bad"),
            "{field}: message does not name the job: {err}"
        );
        assert_eq!(db.count("jobs").await, 0, "{field}: something was written");
    }
}

#[tokio::test]
async fn unknown_keys_and_missing_names_are_refused() {
    let db = TestDb::new().await;
    let file = jobs_file(&format!("{GOOD}\n[[job]]\nproject = \"ACME\"\nname = \"x\"\ncommand = [\"true\"]\ncronn = \"* * * * *\"\n"));
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown field `cronn`"), "{err}");
    assert!(
        err.contains("line"),
        "the message should point at the line: {err}"
    );

    let file = jobs_file(&format!("{GOOD}\n[[job]]\ncommand = [\"true\"]\n"));
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    let err = stderr(&out);
    assert!(
        err.contains("job #2")
            && err.contains("field `project`: is required")
            && err.contains("field `name`: is required"),
        "{err}"
    );

    let file = jobs_file(&format!("{GOOD}{GOOD}"));
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(stderr(&out).contains("defined twice"), "{}", stderr(&out));

    let file = jobs_file("[[jobs]]\nproject = \"A\"\n");
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(
        stderr(&out).contains("unknown field `jobs`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(db.count("jobs").await, 0);
}

#[tokio::test]
async fn the_rust_client_refuses_the_same_way() {
    let db = TestDb::new().await;
    let good = JobDefinition::new("ACME", "good", ["true"]).cron("* * * * *");
    let bad = JobDefinition {
        maxtime: Some(Text::from("0s")),
        timezone: Some("Nowhere/Special".into()),
        ..JobDefinition::new("ACME", "bad", Vec::<String>::new())
    };
    let err = db
        .client
        .apply(&[good, bad], false)
        .await
        .expect_err("refused");
    let Error::Invalid(jobs) = &err else {
        panic!("not a validation error: {err}")
    };
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].names("maxtime") && jobs[0].names("timezone") && jobs[0].names("command"),
        "{err}"
    );
    assert_eq!(db.count("jobs").await, 0);
}

#[tokio::test]
async fn the_longest_values_are_stored_exactly() {
    let db = TestDb::new().await;
    let file = jobs_file(
        "[[job]]\nproject = \"ACME\"\nname = \"long\"\ncommand = [\"true\"]\nmaxtime = \"100years\"\nttl = \"100years\"\nretries = 2147483647\nconcurrency = 2147483647\n",
    );
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (maxtime, ttl, retries, concurrency): (f64, f64, i32, i32) = sqlx::query_as(
        "SELECT extract(epoch FROM maxtime)::float8, extract(epoch FROM ttl)::float8, retries, \
         concurrency FROM sisyphus.jobs",
    )
    .fetch_one(&db.pool)
    .await
    .expect("the stored job");
    assert_eq!((maxtime, ttl), (3_155_760_000.0, 3_155_760_000.0));
    assert_eq!((retries, concurrency), (i32::MAX, i32::MAX));
    let out = db.sisyctl(&["job", "show", "ACME/long"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        crate::harness::stdout(&out).contains("maxtime: 100years"),
        "{}",
        crate::harness::stdout(&out)
    );
}

#[tokio::test]
async fn project_sections_are_named_like_projects() {
    let db = TestDb::new().await;
    let file = jobs_file(&format!("{GOOD}\n[projects.\"bad name!\"]\nnotify = []\n"));
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad name!") && err.contains("dot-separated"),
        "{err}"
    );
    assert_eq!(db.count("jobs").await, 0);
    assert_eq!(db.count("project_defaults").await, 0);
}

/// A `JobSpec` cannot be changed after validation: changed fields go back through
/// `JobSpec::from_fields`, which refuses what validation refuses, naming the key. A stored row
/// changed by hand past those checks reads back as corrupt, naming its column, and the schema's
/// own checks stay as the last line for SQL.
#[tokio::test]
async fn typed_fields_meet_the_same_checks_as_written_ones() {
    let db = TestDb::new().await;
    let valid = JobDefinition::new("ACME", "j", ["true"])
        .validate()
        .expect("valid")
        .into_fields();
    let cases: Vec<(SpecFields, &str, &str)> = vec![
        (
            SpecFields {
                concurrency: 0,
                ..valid.clone()
            },
            "concurrency",
            "less than 1",
        ),
        (
            SpecFields {
                iterations: Some(0),
                ..valid.clone()
            },
            "iterations",
            "less than 1",
        ),
        (
            SpecFields {
                retries: u32::MAX,
                ..valid.clone()
            },
            "retries",
            "more than 2147483647",
        ),
        (
            SpecFields {
                maxtime: Some(Duration::from_secs(18_446_744_073_712)),
                ..valid.clone()
            },
            "maxtime",
            "longest duration allowed",
        ),
        (
            SpecFields {
                ttl: Duration::MAX,
                ..valid.clone()
            },
            "ttl",
            "longest duration allowed",
        ),
        (
            SpecFields {
                command: Vec::new(),
                ..valid.clone()
            },
            "command",
            "empty",
        ),
    ];
    for (fields, field, words) in cases {
        let err = JobSpec::from_fields(fields).expect_err("refused");
        assert!(err.names(field), "{field}: {err}");
        assert!(err.to_string().contains(words), "{field}: {err}");
        assert_eq!(err.job, "ACME/j");
    }

    let spec = JobSpec::from_fields(valid).expect("unchanged fields pass");
    db.client
        .apply_specs(&[spec], false)
        .await
        .expect("applied");
    sqlx::query("UPDATE sisyphus.jobs SET ttl = interval '200 years'")
        .execute(&db.pool)
        .await
        .expect("the schema allows a long ttl");
    let err = db
        .client
        .job_spec(&JobRef::new("ACME", "j"))
        .await
        .expect_err("corrupt");
    assert!(err.to_string().contains("column `ttl`"), "{err}");
    let refused = sqlx::query("UPDATE sisyphus.jobs SET concurrency = 0")
        .execute(&db.pool)
        .await
        .expect_err("the schema's check refuses it");
    assert!(
        refused.to_string().contains("jobs_concurrency_check"),
        "{refused}"
    );
}
