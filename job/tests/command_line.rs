//! The SDK's command line as a person meets it: the ported Fetch example (and the scriptable
//! test job) run as real processes with `--help`, `--version`, a mistyped flag and a bad value.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An example built next to this test (`cargo test` builds the crate's examples).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let job = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        job.exists(),
        "{} missing: run the tests with cargo test",
        job.display()
    );
    job
}

/// An empty directory as the job's home and working directory, so a run would leave traces.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sisyphus-job-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn run(name: &str, dir: &Path, args: &[&str]) -> Output {
    Command::new(example(name))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("FETCH_URL", "http://127.0.0.1:9/feed.xml")
        .env("FETCH_TO", "Fetched.html")
        .env("TESTJOB_SCRIPT", "done:ran")
        .env_remove("TESTJOB_VERSION")
        .env_remove("SISYPHUS_RUN_ID")
        .env_remove("SISYPHUS_PROTOCOL_FD")
        .output()
        .expect("run the example")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn untouched(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("scratch dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the job ran: {left:?} in {}",
        dir.display()
    );
}

/// Every option of ll.sisyphus' `argparser()` (ll-xist 5.84): short form, long form, and the
/// default the ported Fetch job has (its own maxtime, ll.sisyphus' defaults otherwise).
const LL_SISYPHUS: &[(Option<char>, &str, &str)] = &[
    (Some('p'), "projectname", "ACME.FooBar"),
    (Some('j'), "jobname", "Fetch"),
    (None, "fromemail", "none"),
    (None, "toemail", "none"),
    (None, "smtphost", "none"),
    (None, "smtpport", "25"),
    (None, "smtpuser", "none"),
    (None, "smtppassword", "none"),
    (None, "mattermost_url", "none"),
    (None, "mattermost_channel", "none"),
    (None, "mattermost_token", "none"),
    (None, "sentry_dsn", "none"),
    (None, "sentry_environment", "none"),
    (None, "sentry_release", "none"),
    (None, "sentry_debug", "no"),
    (None, "identifier", "none"),
    (Some('m'), "maxtime", "3m"),
    (None, "fork", "yes"),
    (Some('f'), "log2file", "yes"),
    (Some('o'), "log2stdout", "no"),
    (Some('e'), "log2stderr", "no"),
    (None, "keepfilelogs", "none (keep)"),
    (None, "compressfilelogs", "none (never)"),
    (None, "compressmode", "bzip2"),
    (None, "maxemailerrors", "10"),
    (None, "proctitle", "yes"),
    (None, "encoding", "utf-8"),
    (None, "errors", "strict"),
    (None, "noisykills", "no"),
    (None, "exit_on_error", "no"),
    (Some('n'), "notify", "no"),
    (Some('r'), "repeat", "no"),
    (None, "nextrun", "none (at once)"),
    (None, "waitchildbreak", "1s"),
    (None, "maxhealthcheckage", "none (any age)"),
    (None, "healthcheck", "no"),
];

#[test]
fn fetch_help_lists_every_ll_sisyphus_option_with_its_default() {
    let dir = scratch("help");
    let out = run("fetch", &dir, &["--help"]);
    let help = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    println!("{help}");
    assert!(
        help.starts_with(
            "fetch http://127.0.0.1:9/feed.xml and save it to a local file (Fetched.html)\n"
        ),
        "the job's own description first:\n{help}"
    );
    assert!(help.contains("Usage: fetch [OPTIONS]"), "{help}");
    for (short, long, default) in LL_SISYPHUS {
        let flag = match short {
            Some(c) => format!("-{c}, --{long} <"),
            None => format!("    --{long} <"),
        };
        let line = help
            .lines()
            .find(|l| l.starts_with(&format!("  {flag}")))
            .unwrap_or_else(|| panic!("no `{flag}` in --help:\n{help}"));
        assert!(
            line.ends_with(&format!("[default: {default}]")),
            "--{long} should show the default {default}: {line}"
        );
    }
    for extra in [
        "--formatlogline <FORMAT>",
        "--basedir <DIR>",
        "-h, --help",
        "-V, --version",
    ] {
        assert!(help.contains(extra), "{extra}:\n{help}");
    }
    assert!(help.contains("Flags beat the job's own settings"), "{help}");
    untouched(&dir);
}

#[test]
fn a_mistyped_flag_exits_2_suggesting_the_closest_and_nothing_runs() {
    let dir = scratch("typo");
    for (typo, meant) in [
        ("--maxtmie", "--maxtime"),
        ("--log2fiel", "--log2file"),
        ("--smtp_port", "--smtpport"),
        ("--exit-on-error", "--exit_on_error"),
    ] {
        let out = run("fetch", &dir, &[typo, "1"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{typo}: {err}");
        assert!(
            err.contains(&format!("unexpected argument '{typo}' found"))
                && err.contains(&format!("tip: a similar argument exists: '{meant}'")),
            "{typo} should suggest {meant}:\n{err}"
        );
        assert!(err.contains("Usage: fetch "), "{err}");
        assert_eq!(text(&out.stdout), "");
    }
    untouched(&dir);
}

#[test]
fn a_bad_value_exits_2_naming_the_option() {
    let dir = scratch("value");
    for (args, says) in [
        (
            &["--maxtime", "soon"][..],
            "invalid value 'soon' for '--maxtime <SECONDS>'",
        ),
        (
            &["-r", "maybe"],
            "invalid value 'maybe' for '--repeat <yes|no>'",
        ),
        (&["--repeat"], "a value is required for '--repeat <yes|no>'"),
        (
            &["--compressmode", "zip"],
            "invalid value 'zip' for '--compressmode <MODE>'",
        ),
        (
            &["--fromemail", "a@b.org"],
            "--smtphost: failure e-mail needs all of",
        ),
    ] {
        let out = run("fetch", &dir, args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}:\n{err}");
    }
    untouched(&dir);
}

#[test]
fn version_is_the_job_s_own_else_the_sdk_s() {
    let dir = scratch("version");
    let out = run("fetch", &dir, &["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("fetch sisyphus-job {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(example("testjob"))
        .arg("-V")
        .current_dir(&dir)
        .env("HOME", &dir)
        .env("TESTJOB_VERSION", "7.3.1")
        .output()
        .expect("testjob");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "testjob 7.3.1\n");
    untouched(&dir);
}

#[test]
fn help_shows_the_job_s_settings_and_flags_beat_them() {
    // The test job sets maxtime 60 s (ll.sisyphus' default is 5 minutes): --help shows the
    // job's value; `--maxtime 1` beats it (the run is killed after a second, not a minute).
    let dir = scratch("precedence");
    let out = run("testjob", &dir, &["-h"]);
    let help = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    let line = |flag: &str| {
        help.lines()
            .find(|l| l.contains(flag))
            .unwrap_or_else(|| panic!("{flag}:\n{help}"))
            .to_string()
    };
    assert!(line("--maxtime <").ends_with("[default: 1m]"));
    assert!(line("--fork <").ends_with("[default: yes]"));
    assert!(line("--projectname <").ends_with("[default: Test]"));
    let started = std::time::Instant::now();
    let out = Command::new(example("testjob"))
        .args(["--maxtime", "1", "--basedir"])
        .arg(&dir)
        .env("TESTJOB_SCRIPT", "sleep:30")
        .env_remove("SISYPHUS_RUN_ID")
        .output()
        .expect("testjob");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let log = std::fs::read_to_string(dir.join("Test/job/last_timeout.sisyphuslog")).expect("log");
    assert!(log.contains("timed out after 0:00:01 (maxtime)"), "{log}");
}
