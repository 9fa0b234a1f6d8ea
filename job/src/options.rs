//! ll.sisyphus' options: each a field with a default (the job's `options()`), each overridable by
//! a command-line flag of the same name (`--maxtime 60`, `--maxtime=60`, `-m 60`). Flags beat
//! fields. A bad value is refused with a message that names the flag.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sisyphus_logfile::Compression;
use sisyphus_notify::Secret;

/// When the next run starts in repeat mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextRun {
    /// This long after the previous run ended.
    After(Duration),
    /// At this instant (immediately if it has passed).
    At(DateTime<Utc>),
}

/// Every option of a job. Construct with [`Options::new`] and set what differs.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub projectname: String,
    pub jobname: String,
    /// Added to failure reports.
    pub identifier: Option<String>,
    /// The longest a run may take; the run is killed (`timeout`) after it.
    pub maxtime: Duration,
    /// Do the work in a forked child while the parent watches maxtime (default true).
    pub fork: bool,
    /// Report runs killed for passing maxtime (the `{kill}` result line is always written).
    pub noisykills: bool,
    /// In repeat mode, stop after a failed run.
    pub exit_on_error: bool,
    /// Run again and again (the job as its own cron).
    pub repeat: bool,
    /// Between runs in repeat mode; None: at once.
    pub nextrun: Option<NextRun>,
    /// Instead of running, check the job's health.
    pub healthcheck: bool,
    /// The last good run may be at most this old; None: any age.
    pub maxhealthcheckage: Option<Duration>,
    pub log2file: bool,
    pub log2stdout: bool,
    pub log2stderr: bool,
    /// A line format with `{time}`, `{starttime}`, `{tags}` and `{line}`; None: ll.sisyphus' own.
    pub formatlogline: Option<String>,
    /// Log files older than this are removed at the end of a run.
    pub keepfilelogs: Option<Duration>,
    /// Log files older than this are compressed.
    pub compressfilelogs: Option<Duration>,
    pub compressmode: Compression,
    /// Only UTF-8 is written.
    pub encoding: String,
    /// Most log lines put in a failure report.
    pub maxemailerrors: u32,
    /// Show the phase in the process title.
    pub proctitle: bool,
    /// Where log files go; default `~/ll.sisyphus`.
    pub basedir: Option<PathBuf>,
    pub notify: bool,
    pub fromemail: Option<String>,
    pub toemail: Option<String>,
    pub smtphost: Option<String>,
    pub smtpport: u16,
    pub smtpuser: Option<String>,
    /// Prints `***` in `Debug`: an `Options` may be logged.
    pub smtppassword: Option<Secret>,
    pub mattermost_url: Option<String>,
    pub mattermost_channel: Option<String>,
    pub mattermost_token: Option<Secret>,
    /// The DSN holds Sentry's key.
    pub sentry_dsn: Option<Secret>,
    pub sentry_environment: Option<String>,
    pub sentry_release: Option<String>,
    pub sentry_debug: bool,
}

impl Options {
    /// ll.sisyphus' defaults: maxtime 5 minutes, fork, log to a file, bzip2 compression.
    pub fn new(projectname: impl Into<String>, jobname: impl Into<String>) -> Options {
        Options {
            projectname: projectname.into(),
            jobname: jobname.into(),
            identifier: None,
            maxtime: Duration::from_secs(5 * 60),
            fork: true,
            noisykills: false,
            exit_on_error: false,
            repeat: false,
            nextrun: None,
            healthcheck: false,
            maxhealthcheckage: None,
            log2file: true,
            log2stdout: false,
            log2stderr: false,
            formatlogline: None,
            keepfilelogs: None,
            compressfilelogs: None,
            compressmode: Compression::Bzip2,
            encoding: "utf-8".into(),
            maxemailerrors: 10,
            proctitle: true,
            basedir: None,
            notify: false,
            fromemail: None,
            toemail: None,
            smtphost: None,
            smtpport: 25,
            smtpuser: None,
            smtppassword: None,
            mattermost_url: None,
            mattermost_channel: None,
            mattermost_token: None,
            sentry_dsn: None,
            sentry_environment: None,
            sentry_release: None,
            sentry_debug: false,
        }
    }

    /// Applies command-line flags over the fields, then checks the whole.
    pub fn apply_args<I, S>(&mut self, args: I) -> Result<(), OptionError>
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
                None => args
                    .next()
                    .ok_or_else(|| OptionError::new(name, "needs a value"))?,
            };
            self.set(name, &value)
                .map_err(|problem| OptionError::new(name, problem))?;
        }
        self.check()
    }

    /// Sets one option from its text form.
    fn set(&mut self, name: &str, v: &str) -> Result<(), String> {
        match name {
            "projectname" => self.projectname = v.to_string(),
            "jobname" => self.jobname = v.to_string(),
            "identifier" => self.identifier = Some(v.to_string()),
            "maxtime" => self.maxtime = seconds(v)?,
            "fork" => self.fork = flag(v)?,
            "noisykills" => self.noisykills = flag(v)?,
            "exit_on_error" => self.exit_on_error = flag(v)?,
            "repeat" => self.repeat = flag(v)?,
            "nextrun" => self.nextrun = Some(next_run(v)?),
            "healthcheck" => self.healthcheck = flag(v)?,
            "maxhealthcheckage" => self.maxhealthcheckage = Some(seconds(v)?),
            "log2file" => self.log2file = flag(v)?,
            "log2stdout" => self.log2stdout = flag(v)?,
            "log2stderr" => self.log2stderr = flag(v)?,
            "formatlogline" => self.formatlogline = Some(v.to_string()),
            "keepfilelogs" => self.keepfilelogs = Some(days(v)?),
            "compressfilelogs" => self.compressfilelogs = Some(days(v)?),
            "compressmode" => self.compressmode = v.parse()?,
            "encoding" => self.encoding = v.to_string(),
            "errors" => {
                if v != "strict" && v != "replace" {
                    return Err(format!(
                        "`{v}` is not an error handler; expected strict or replace"
                    ));
                }
            }
            "maxemailerrors" => self.maxemailerrors = number(v)?,
            "proctitle" => self.proctitle = flag(v)?,
            "basedir" => self.basedir = Some(PathBuf::from(v)),
            "notify" => self.notify = flag(v)?,
            "fromemail" => self.fromemail = Some(email(v)?),
            "toemail" => self.toemail = Some(email(v)?),
            "smtphost" => self.smtphost = Some(v.to_string()),
            "smtpport" => self.smtpport = number(v)?,
            "smtpuser" => self.smtpuser = Some(v.to_string()),
            "smtppassword" => self.smtppassword = Some(Secret::new(v)),
            "mattermost_url" => self.mattermost_url = Some(url(v)?),
            "mattermost_channel" => self.mattermost_channel = Some(v.to_string()),
            "mattermost_token" => self.mattermost_token = Some(Secret::new(v)),
            "sentry_dsn" => self.sentry_dsn = Some(Secret::new(sentry_dsn(v)?)),
            "sentry_environment" => self.sentry_environment = Some(v.to_string()),
            "sentry_release" => self.sentry_release = Some(v.to_string()),
            "sentry_debug" => self.sentry_debug = flag(v)?,
            _ => return Err("is not an option of this job".into()),
        }
        Ok(())
    }

    /// Checks what only makes sense together.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.projectname.trim().is_empty() {
            return Err(OptionError::new("projectname", "must not be empty"));
        }
        if self.jobname.trim().is_empty() {
            return Err(OptionError::new("jobname", "must not be empty"));
        }
        if self.maxtime.is_zero() {
            return Err(OptionError::new("maxtime", "must be more than 0 seconds"));
        }
        let enc = self.encoding.to_ascii_lowercase().replace('_', "-");
        if enc != "utf-8" && enc != "utf8" {
            return Err(OptionError::new(
                "encoding",
                format!(
                    "`{}` is not supported: log files are written as utf-8",
                    self.encoding
                ),
            ));
        }
        let mail = [&self.fromemail, &self.toemail, &self.smtphost];
        if mail.iter().any(|o| o.is_some()) && !mail.iter().all(|o| o.is_some()) {
            return Err(OptionError::new(
                "smtphost",
                "failure e-mail needs all of --fromemail, --toemail and --smtphost",
            ));
        }
        if self.smtpuser.is_some() != self.smtppassword.is_some() {
            return Err(OptionError::new(
                "smtpuser",
                "SMTP login needs both --smtpuser and --smtppassword",
            ));
        }
        let mm = [
            self.mattermost_url.is_some(),
            self.mattermost_channel.is_some(),
            self.mattermost_token.is_some(),
        ];
        if mm.iter().any(|set| *set) && !mm.iter().all(|set| *set) {
            return Err(OptionError::new(
                "mattermost_url",
                "Mattermost needs all of --mattermost_url, --mattermost_channel and --mattermost_token",
            ));
        }
        Ok(())
    }
}

/// A refused option: which flag, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {problem}")]
pub struct OptionError {
    pub flag: String,
    pub problem: String,
}

impl OptionError {
    fn new(name: &str, problem: impl Into<String>) -> OptionError {
        OptionError {
            flag: format!("--{name}"),
            problem: problem.into(),
        }
    }
}

/// ll.sisyphus' flag values: false, no, 0, true, yes, 1.
fn flag(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!(
            "`{v}` is not a flag value; expected true, yes, 1, false, no or 0"
        )),
    }
}

/// A number of seconds (`90`, `1.5`) or a duration (`90s`, `5m`, `1h 30m`).
fn seconds(v: &str) -> Result<Duration, String> {
    if let Ok(s) = v.trim().parse::<f64>() {
        return Duration::try_from_secs_f64(s)
            .map_err(|_| format!("`{v}` is not a number of seconds"));
    }
    humantime::parse_duration(v.trim())
        .map_err(|_| format!("`{v}` is not a number of seconds or a duration like 5m"))
}

/// A number of days (ll.sisyphus' keepfilelogs/compressfilelogs), or a duration.
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

/// `https://KEY@HOST/PROJECT`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(args: &[&str]) -> Result<Options, OptionError> {
        let mut o = Options::new("P", "J");
        o.maxtime = Duration::from_secs(60);
        o.repeat = true;
        o.apply_args(args.iter().copied())?;
        Ok(o)
    }

    fn refused(args: &[&str]) -> OptionError {
        match apply(args) {
            Ok(o) => panic!("{args:?} accepted: {o:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn fields_are_defaults_and_flags_beat_them() {
        let o = apply(&[]).expect("no flags");
        assert_eq!((o.maxtime, o.repeat), (Duration::from_secs(60), true));
        let o = apply(&["--maxtime", "5", "--repeat=no", "-p", "Q", "-j", "K"]).expect("flags");
        assert_eq!(o.maxtime, Duration::from_secs(5));
        assert!(!o.repeat);
        assert_eq!((o.projectname.as_str(), o.jobname.as_str()), ("Q", "K"));
        let o = apply(&["-m", "1m 30s", "-r", "yes", "-f", "0", "-n", "1"]).expect("short flags");
        assert_eq!(o.maxtime, Duration::from_secs(90));
        assert!(o.repeat && !o.log2file && o.notify);
    }

    #[test]
    fn every_option_has_a_flag() {
        let o = apply(&[
            "--identifier",
            "id7",
            "--fork",
            "false",
            "--noisykills",
            "true",
            "--exit_on_error",
            "yes",
            "--nextrun",
            "2.5",
            "--healthcheck",
            "1",
            "--maxhealthcheckage",
            "3600",
            "--log2stdout",
            "1",
            "--log2stderr",
            "true",
            "--formatlogline",
            "{time} {line}",
            "--keepfilelogs",
            "30",
            "--compressfilelogs",
            "7",
            "--compressmode",
            "lzma",
            "--encoding",
            "UTF-8",
            "--errors",
            "replace",
            "--maxemailerrors",
            "3",
            "--proctitle",
            "no",
            "--basedir",
            "/tmp/x",
            "--fromemail",
            "a@b.org",
            "--toemail",
            "c@d.org",
            "--smtphost",
            "mail.example.org",
            "--smtpport",
            "2525",
            "--smtpuser",
            "u",
            "--smtppassword",
            "secret",
            "--mattermost_url",
            "https://mm.example.org/api/v4/posts",
            "--mattermost_channel",
            "4cnszmopr3ntjexi4qmx499inc",
            "--mattermost_token",
            "tok",
            "--sentry_dsn",
            "https://key@o0.ingest.sentry.io/0",
            "--sentry_environment",
            "prod",
            "--sentry_release",
            "1.2",
            "--sentry_debug",
            "yes",
        ])
        .expect("all flags");
        assert_eq!(o.identifier.as_deref(), Some("id7"));
        assert!(!o.fork && o.noisykills && o.exit_on_error && o.healthcheck);
        assert_eq!(o.nextrun, Some(NextRun::After(Duration::from_millis(2500))));
        assert_eq!(o.maxhealthcheckage, Some(Duration::from_secs(3600)));
        assert!(o.log2stdout && o.log2stderr && !o.proctitle && o.sentry_debug);
        assert_eq!(o.formatlogline.as_deref(), Some("{time} {line}"));
        assert_eq!(o.keepfilelogs, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(o.compressfilelogs, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(o.compressmode, Compression::Xz);
        assert_eq!((o.maxemailerrors, o.smtpport), (3, 2525));
        assert_eq!(o.basedir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(o.smtppassword.as_ref().map(Secret::expose), Some("secret"));
        assert!(!format!("{o:?}").contains("secret"), "a password in Debug");
        assert_eq!(o.sentry_environment.as_deref(), Some("prod"));
        let o = apply(&["--nextrun", "2026-12-01T10:00:00Z"]).expect("instant");
        assert!(matches!(o.nextrun, Some(NextRun::At(_))));
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--maxtime", "soon"], "--maxtime"),
            (&["--maxtime", "0"], "--maxtime"),
            (&["--fork", "maybe"], "--fork"),
            (&["--repeat"], "--repeat"),
            (&["--nextrun", "tomorrow-ish"], "--nextrun"),
            (&["--compressmode", "zip"], "--compressmode"),
            (&["--encoding", "latin-1"], "--encoding"),
            (&["--errors", "ignore"], "--errors"),
            (&["--maxemailerrors", "-1"], "--maxemailerrors"),
            (&["--smtpport", "70000"], "--smtpport"),
            (&["--toemail", "nobody"], "--toemail"),
            (&["--fromemail", "a@b.org"], "--smtphost"),
            (&["--smtpuser", "u"], "--smtpuser"),
            (&["--mattermost_url", "ftp://x"], "--mattermost_url"),
            (
                &["--mattermost_url", "https://mm.example.org/api/v4/posts"],
                "--mattermost_url",
            ),
            (
                &["--sentry_dsn", "https://nokey.example.org"],
                "--sentry_dsn",
            ),
            (&["--keepfilelogs", "a week"], "--keepfilelogs"),
            (&["--bogus", "1"], "--bogus"),
            (&["-p", ""], "--projectname"),
        ];
        for (args, flag) in cases {
            let e = refused(args);
            assert_eq!(&e.flag, flag, "{args:?}: {e}");
            assert!(e.to_string().starts_with(flag), "{e}");
        }
        assert_eq!(refused(&["stray"]).flag, "stray");
    }
}
