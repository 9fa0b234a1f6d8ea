//! The SDK's standalone mode end to end: the `testjob` example (built by `cargo test` with the
//! crate's examples) run as a real process, as cron would run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn testjob() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples");
    let job = dir.join("testjob");
    assert!(
        job.exists(),
        "{} missing: run the tests with cargo test",
        job.display()
    );
    job
}

fn base(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sisyphus-job-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("base dir");
    dir
}

fn job_dir(base: &Path) -> PathBuf {
    base.join("Test").join("job")
}

fn command(base: &Path, script: &str, flags: &[&str]) -> Command {
    let mut cmd = Command::new(testjob());
    cmd.arg("--basedir")
        .arg(base)
        .args(flags)
        .env("TESTJOB_SCRIPT", script)
        .env_remove("SISYPHUS_RUN_ID")
        .env_remove("SISYPHUS_PROTOCOL_FD");
    cmd
}

fn run(base: &Path, script: &str, flags: &[&str]) -> Output {
    command(base, script, flags).output().expect("run testjob")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn link(base: &Path, name: &str) -> Option<String> {
    std::fs::read_link(job_dir(base).join(name))
        .ok()
        .map(|p| p.display().to_string())
}

fn log_files(base: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(job_dir(base))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("20"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A log line without its timestamps and pids: `child :: {tags} >> text`.
fn strip(line: &str) -> String {
    let rest = line
        .split_once("]=[t+")
        .and_then(|(_, r)| r.split_once(']'))
        .map_or(line, |(_, r)| r);
    let Some(rest) = rest.strip_prefix(" :: ") else {
        return rest.trim_start().to_string();
    };
    // The first segment is the writer, `parent 4711` or `child 4712`: drop the pid.
    let end = [rest.find(" :: "), rest.find(" >> ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    let (first, tail) = rest.split_at(end);
    let first = match first.rsplit_once(' ') {
        Some((who, pid))
            if pid.chars().all(|c| c.is_ascii_digit()) && who.ends_with("child")
                || who.ends_with("parent") =>
        {
            who
        }
        _ => first,
    };
    format!("{first}{tail}")
}

fn file_lines(base: &Path, link_name: &str) -> Vec<String> {
    let target = link(base, link_name).expect("link");
    std::fs::read_to_string(job_dir(base).join(target))
        .expect("log file")
        .lines()
        .map(strip)
        .collect()
}

#[test]
fn the_log_file_matches_ll_sisyphus_line_for_line() {
    let base = base("format");
    let out = run(
        &base,
        "delay:quiet detail;log:hello;tagged:xml,warning:can't parse;items:a,b;error:bad input;done:all good",
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = file_lines(&base, "last_successful.sisyphuslog");
    let exe = testjob().display().to_string();
    let file = link(&base, "current.sisyphuslog").expect("current");
    let expected = [
        format!("parent :: {{sisyphus}}{{init}} >> {exe} (max time 0:01:00)"),
        format!(
            "parent :: {{sisyphus}}{{init}} >> logging to {}",
            job_dir(&base).join(&file).display()
        ),
        "child :: {sisyphus}{init} >> forked worker child".to_string(),
        "child >> quiet detail".to_string(),
        "child >> hello".to_string(),
        "child :: {test}{xml}{warning} >> can't parse".to_string(),
        "child :: [1/2] item a >> processing a".to_string(),
        "child :: [2/2] item b >> processing b".to_string(),
        "child :: {exc} >> bad input: the cause".to_string(),
        "child :: {sisyphus}{result}{errors} >> all good".to_string(),
    ];
    assert_eq!(lines, expected);
    // Timestamps in ll.sisyphus' format.
    let raw = std::fs::read_to_string(job_dir(&base).join(&file)).expect("file");
    let first = raw.lines().next().expect("a line");
    assert!(
        first.starts_with("[20") && first.contains("]=[t+0:00:00."),
        "{first}"
    );
}

#[test]
fn the_five_links_point_where_ll_sisyphus_says() {
    let base = base("links");
    let cases: [(&str, Option<i32>, &str); 5] = [
        ("done:fine", Some(0), "last_successful.sisyphuslog"),
        ("fail:broken", Some(1), "last_failed.sisyphuslog"),
        (
            "log:about to stop;sigint",
            Some(130),
            "last_interrupted.sisyphuslog",
        ),
        ("log:sleepy;sleep:10", Some(1), "last_timeout.sisyphuslog"),
        ("log:nothing to do;nothing", Some(0), ""),
    ];
    let mut files = Vec::new();
    for (script, code, link_name) in cases {
        let before = log_files(&base);
        let out = run(&base, script, &["--maxtime", "1"]);
        assert_eq!(out.status.code(), code, "{script}: {}", text(&out.stderr));
        let after = log_files(&base);
        let current = link(&base, "current.sisyphuslog").expect("current link");
        assert!(
            !before.contains(&current),
            "{script}: current points at the new run's file"
        );
        if link_name.is_empty() {
            assert_eq!(after, before, "an uneventful run's file is deleted");
            assert!(
                !job_dir(&base).join(&current).exists(),
                "current points at a missing file"
            );
        } else {
            assert_eq!(
                link(&base, link_name).as_deref(),
                Some(current.as_str()),
                "{script}"
            );
            files.push(current);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Each link still points at its own run's file.
    for (name, file) in [
        "last_successful",
        "last_failed",
        "last_interrupted",
        "last_timeout",
    ]
    .iter()
    .zip(&files)
    {
        assert_eq!(
            link(&base, &format!("{name}.sisyphuslog")).as_ref(),
            Some(file)
        );
    }
    let failed = file_lines(&base, "last_failed.sisyphuslog");
    assert_eq!(
        failed.last().map(String::as_str),
        Some("child :: {sisyphus}{result}{fail} >> broken")
    );
    let timeout = file_lines(&base, "last_timeout.sisyphuslog");
    assert_eq!(
        timeout.last().map(String::as_str),
        Some("parent :: {sisyphus}{result}{kill} >> timed out after 0:00:01 (maxtime)")
    );
}

#[test]
fn maxtime_kills_within_two_seconds_and_a_second_instance_exits_at_once() {
    let base = base("maxtime");
    let started = Instant::now();
    let mut first = command(&base, "log:working;sleep:10", &["--maxtime", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("first instance");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let second = run(&base, "done:should not run", &[]);
    let second_took = t.elapsed();
    assert_eq!(second.status.code(), Some(75), "{}", text(&second.stderr));
    assert!(
        text(&second.stderr).contains("another instance is running"),
        "{}",
        text(&second.stderr)
    );
    assert!(
        second_took < Duration::from_secs(1),
        "the second instance took {second_took:?}"
    );
    let status = first.wait().expect("wait first");
    let took = started.elapsed();
    println!(
        "maxtime 1 s: the run ended after {:.2} s; the second instance exited after {:.0} ms",
        took.as_secs_f64(),
        second_took.as_secs_f64() * 1000.0
    );
    assert_eq!(status.code(), Some(1));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let lines = file_lines(&base, "last_timeout.sisyphuslog");
    assert!(
        lines.iter().any(|l| l.contains("{sisyphus}{result}{kill}")),
        "{lines:?}"
    );
    let health = std::fs::read_to_string(job_dir(&base).join("health.json")).expect("health");
    assert!(health.contains("\"timeout\""), "{health}");
}

#[test]
fn healthcheck_reports_never_run_failed_too_old_and_healthy() {
    let base = base("health");
    let check = |flags: &[&str]| {
        let mut all = vec!["--healthcheck", "yes"];
        all.extend_from_slice(flags);
        run(&base, "", &all)
    };
    let o = check(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("never run"), "{}", text(&o.stdout));

    run(&base, "fail:database down", &[]);
    let o = check(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("last run failed") && text(&o.stdout).contains("database down"),
        "{}",
        text(&o.stdout)
    );

    run(&base, "done:ok", &[]);
    let o = check(&["--maxhealthcheckage", "60"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert_eq!(text(&o.stdout), "");

    std::thread::sleep(Duration::from_millis(1200));
    let o = check(&["--maxhealthcheckage", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("more than maxhealthcheckage"),
        "{}",
        text(&o.stdout)
    );

    // The job's own healthcheck() counts too.
    let o = command(&base, "", &["--healthcheck", "1"])
        .env("TESTJOB_HEALTH", "queue has 900 stuck items")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("900 stuck items"));

    // It does not take the single-instance lock: it answers while a run is going on.
    let mut long = command(&base, "sleep:3", &[])
        .stdout(Stdio::null())
        .spawn()
        .expect("long run");
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let o = check(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(t.elapsed() < Duration::from_secs(1));
    let _ = long.kill();
    let _ = long.wait();
}

#[test]
fn repeat_runs_again_after_nextrun_and_exit_on_error_stops_it() {
    let base = base("repeat");
    let t = Instant::now();
    let out = command(
        &base,
        "log:tick;fail:third time unlucky",
        &[
            "--repeat",
            "yes",
            "--nextrun",
            "0.3",
            "--exit_on_error",
            "yes",
        ],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        log_files(&base).len(),
        1,
        "exit_on_error stops after the first failed run"
    );
    // Without exit_on_error it goes on; stop it after three runs' worth of time.
    let base2 = self::base("repeat2");
    let mut child = command(
        &base2,
        "log:tick;done:ok",
        &["--repeat", "yes", "--nextrun", "0.3"],
    )
    .stdout(Stdio::null())
    .spawn()
    .expect("repeat");
    std::thread::sleep(Duration::from_millis(1000));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    let runs = log_files(&base2).len();
    println!(
        "repeat with nextrun 0.3 s: {runs} runs in 1 s (first test took {:?})",
        t.elapsed()
    );
    assert!(
        (3..=4).contains(&runs),
        "{runs} runs in 1 s with nextrun 0.3 s"
    );
}

#[test]
fn stdout_formats_no_file_retention_and_compression() {
    let base = base("outputs");
    // log2stdout with a custom line format, no file.
    let out = run(
        &base,
        "log:visible;done:ok",
        &[
            "--log2stdout",
            "1",
            "--log2file",
            "no",
            "--formatlogline",
            "{tags}|{line}",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.lines().any(|l| l == "|visible"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l == "{sisyphus}{result}{ok}|ok"),
        "{stdout}"
    );
    assert!(log_files(&base).is_empty(), "log2file no writes no file");
    // log2stderr.
    let out = run(
        &base,
        "log:to stderr;done:ok",
        &["--log2stderr", "yes", "--log2file", "0"],
    );
    assert!(
        text(&out.stderr).contains(">> to stderr"),
        "{}",
        text(&out.stderr)
    );

    // Old files: one compressed (gzip), one removed.
    let dir = job_dir(&base);
    std::fs::create_dir_all(&dir).expect("dir");
    let old = |name: &str, days: u64| {
        let p = dir.join(name);
        std::fs::write(&p, "old line\n").expect("write");
        let f = std::fs::File::options().write(true).open(&p).expect("open");
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(days * 86_400))
            .expect("mtime");
    };
    old("2020-01-01-00-00-00-000000.sisyphuslog", 40);
    old("2020-02-01-00-00-00-000000.sisyphuslog", 10);
    let out = run(
        &base,
        "done:ok",
        &[
            "--keepfilelogs",
            "30",
            "--compressfilelogs",
            "7",
            "--compressmode",
            "gzip",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !dir.join("2020-01-01-00-00-00-000000.sisyphuslog").exists(),
        "older than keepfilelogs: removed"
    );
    assert!(
        dir.join("2020-02-01-00-00-00-000000.sisyphuslog.gz")
            .exists(),
        "older than compressfilelogs: gzipped"
    );
}

#[test]
fn a_bad_flag_is_refused_naming_it_and_nothing_runs() {
    let base = base("badflag");
    let out = run(&base, "done:ok", &["--maxtime", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("invalid value 'soon' for '--maxtime <SECONDS>': not a number of seconds"),
        "{}",
        text(&out.stderr)
    );
    assert!(!job_dir(&base).exists(), "nothing was written");
    let out = run(&base, "done:ok", &["--compressmode", "zip"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--compressmode"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_process_title_shows_the_phase() {
    let base = base("title");
    let mut child = command(&base, "sleep:2", &[])
        .stdout(Stdio::null())
        .spawn()
        .expect("run");
    std::thread::sleep(Duration::from_millis(400));
    let parent = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(parent.trim(), "job:running");
}

#[test]
fn without_fork_the_job_times_out_by_itself() {
    let base = base("solo");
    let out = run(&base, "log:alone;done:fine", &["--fork", "no"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = file_lines(&base, "last_successful.sisyphuslog");
    assert!(
        lines.iter().any(|l| l == ">> alone"),
        "no process label without fork: {lines:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("{sisyphus}{result}{ok} >> fine")
    );
    let t = Instant::now();
    let out = run(
        &base,
        "log:slow;sleep:10",
        &["--fork", "no", "--maxtime", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    let lines = file_lines(&base, "last_timeout.sisyphuslog");
    assert!(
        lines.iter().any(|l| l.contains("{sisyphus}{result}{kill}")),
        "{lines:?}"
    );
}

/// A one-shot HTTP server on loopback that answers every request with `body`.
fn serve(body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            // Read the whole request head before answering.
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/python.html")
}

#[test]
fn the_fetch_example_caches_a_page_from_a_local_server() {
    let base = base("fetch");
    let url = serve("<html>python</html>");
    let exe = testjob().with_file_name("fetch");
    let target = base.join("Python.html");
    let out = Command::new(exe)
        .current_dir(&base)
        .args(["--basedir"])
        .arg(&base)
        .env("FETCH_URL", &url)
        .env("FETCH_TO", &target)
        .env_remove("SISYPHUS_RUN_ID")
        .output()
        .expect("fetch");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&target).expect("page"),
        "<html>python</html>"
    );
    let dir = base.join("ACME.FooBar").join("Fetch");
    let log = std::fs::read_to_string(dir.join("last_successful.sisyphuslog")).expect("log");
    assert!(
        log.contains(&format!("{{sisyphus}}{{result}}{{ok}} >> cached {url:?}")),
        "{log}"
    );
}

/// One HTTP request as an endpoint on loopback received it: (path, headers, body).
type Received = (String, Vec<(String, String)>, Vec<u8>);

/// An HTTP endpoint standing in for Mattermost and Sentry: records each request, answers 200.
fn capture() -> (u16, std::sync::mpsc::Receiver<Received>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let mut lines = head.split("\r\n");
            let path = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = buf[head_end + 4..].to_vec();
            while body.len() < length {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
            let _ = tx.send((path, headers, body));
        }
    });
    (port, rx)
}

/// The event of a Sentry envelope (its third line).
fn envelope_event(body: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(body).to_string();
    serde_json::from_str(text.lines().nth(2).expect("an event item")).expect("event JSON")
}

#[test]
fn a_standalone_run_posts_to_mattermost_and_sentry_and_reports_a_mail_it_could_not_send() {
    let base = base("notify");
    let (port, received) = capture();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mm = format!("http://127.0.0.1:{port}");
    let dsn = format!("http://publickey@127.0.0.1:{port}/7");
    let smtp_port = dead.to_string();
    let out = run(
        &base,
        "tagged:mattermost:deploy started;tagged:sentry,error:disk full;log:plain;fail:gave up",
        &[
            "--mattermost_url",
            &mm,
            "--mattermost_channel",
            "chan",
            "--mattermost_token",
            "tok",
            "--sentry_dsn",
            &dsn,
            "--sentry_environment",
            "prod",
            "--smtphost",
            "127.0.0.1",
            "--smtpport",
            &smtp_port,
            "--fromemail",
            "job@example.org",
            "--toemail",
            "ops@example.org",
            "--smtpuser",
            "job",
            "--smtppassword",
            "hunter2",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let mut got: Vec<Received> = received.try_iter().collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let posts: Vec<&Received> = got.iter().filter(|r| r.0 == "/api/v4/posts").collect();
    let envelopes: Vec<&Received> = got.iter().filter(|r| r.0 == "/api/7/envelope/").collect();
    assert_eq!((posts.len(), envelopes.len()), (2, 2), "{got:?}");
    let messages: Vec<String> = posts
        .iter()
        .map(|(_, headers, body)| {
            assert!(headers.contains(&("authorization".into(), "Bearer tok".into())));
            let v: serde_json::Value = serde_json::from_slice(body).expect("post JSON");
            assert_eq!(v["channel_id"], "chan");
            v["message"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.ends_with(": deploy started")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.ends_with(": gave up")),
        "{messages:?}"
    );
    let levels: Vec<(String, String)> = envelopes
        .iter()
        .map(|(_, _, body)| {
            let e = envelope_event(body);
            assert_eq!(e["environment"], "prod");
            (
                e["message"].as_str().unwrap_or("").to_string(),
                // Sentry's protocol leaves out the default level, error.
                e["level"].as_str().unwrap_or("error").to_string(),
            )
        })
        .collect();
    assert!(
        levels.contains(&("disk full".into(), "error".into())),
        "{levels:?}"
    );
    assert!(
        levels.contains(&("gave up".into(), "fatal".into())),
        "{levels:?}"
    );
    // Nothing listens on the SMTP port: the run's log says so, without the password.
    let log = std::fs::read_to_string(job_dir(&base).join("last_failed.sisyphuslog"))
        .expect("the failed run's log");
    assert!(log.contains("email notification not sent"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
}
