//! ll.sisyphus' options: each a field with a default (the job's `options()`), each overridable by
//! a command-line flag of the same name (`--maxtime 60`, `--maxtime=60`, `-m 60`). Flags beat
//! fields. The command line is a clap [`Command`] built from the fields ([`Options::command`]),
//! so `--help` shows the job's own values as the defaults, an unknown flag gets clap's "a similar
//! argument exists", and a bad value is refused with a message that names the flag.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::builder::{IntoResettable, PossibleValuesParser, TypedValueParser, ValueParser};
use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Command};
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
    /// Between SIGTERM and SIGKILL to a run's process group when it passes maxtime (the child's
    /// time to clean up; the SDK's default is 1 second, ll.sisyphus' half of one).
    pub waitchildbreak: Duration,
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
            waitchildbreak: Duration::from_secs(1),
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

    /// ll.sisyphus' command line as a clap [`Command`] named after the job: every option a flag
    /// with ll.sisyphus' spelling (the field's name) and short form, its metavariable, what it
    /// does, and as its default the value this `Options` holds — the job's own where it set one.
    /// A secret the job set shows `***`. `-h/--help` and `-V/--version` are clap's.
    pub fn command(&self) -> Command {
        let secret = |s: &Option<Secret>| if s.is_some() { "***" } else { "none" };
        Command::new(self.jobname.clone())
            .args_override_self(true)
            .after_help(AFTER_HELP)
            .next_help_heading("The job")
            .arg(opt(
                "projectname",
                Some('p'),
                "NAME",
                "The project this job belongs to (dot-separated)",
                &self.projectname,
                text,
            ))
            .arg(opt(
                "jobname",
                Some('j'),
                "NAME",
                "The name of the job",
                &self.jobname,
                text,
            ))
            .arg(opt(
                "identifier",
                None,
                "IDENTIFIER",
                "Additional identifier added to the failure report",
                or_none(&self.identifier),
                text,
            ))
            .next_help_heading("Running")
            .arg(opt(
                "maxtime",
                Some('m'),
                "SECONDS",
                "The longest a run may take; then it is killed (timeout)",
                duration(self.maxtime),
                seconds,
            ))
            .arg(opt(
                "waitchildbreak",
                None,
                "SECONDS",
                "After maxtime, the child's time to clean up before SIGKILL",
                duration(self.waitchildbreak),
                seconds,
            ))
            .arg(opt(
                "fork",
                None,
                "yes|no",
                "Work in a forked child while the parent watches maxtime?",
                yes_no(self.fork),
                flag,
            ))
            .arg(opt(
                "noisykills",
                None,
                "yes|no",
                "Report a run killed for passing maxtime (failure e-mail)?",
                yes_no(self.noisykills),
                flag,
            ))
            .arg(opt(
                "notify",
                Some('n'),
                "yes|no",
                "Notify the OS X notification center? (no effect here)",
                yes_no(self.notify),
                flag,
            ))
            .arg(opt(
                "proctitle",
                None,
                "yes|no",
                "Show the job's phase in the process title?",
                yes_no(self.proctitle),
                flag,
            ))
            .next_help_heading("Repeat mode")
            .arg(opt(
                "repeat",
                Some('r'),
                "yes|no",
                "Repeat the job run indefinitely?",
                yes_no(self.repeat),
                flag,
            ))
            .arg(opt(
                "nextrun",
                None,
                "SECONDS",
                "Wait after a run (or until an RFC 3339 time)",
                match self.nextrun {
                    None => "none (at once)".to_string(),
                    Some(NextRun::After(d)) => duration(d),
                    Some(NextRun::At(t)) => t.to_rfc3339(),
                },
                next_run,
            ))
            .arg(opt(
                "exit_on_error",
                None,
                "yes|no",
                "Stop repeating after a failed run?",
                yes_no(self.exit_on_error),
                flag,
            ))
            .next_help_heading("Health check")
            .arg(opt(
                "healthcheck",
                None,
                "yes|no",
                "Run a health check instead of the job?",
                yes_no(self.healthcheck),
                flag,
            ))
            .arg(opt(
                "maxhealthcheckage",
                None,
                "SECONDS",
                "Unhealthy when the last good run is older",
                self.maxhealthcheckage
                    .map_or("none (any age)".into(), duration),
                seconds,
            ))
            .next_help_heading("Log files")
            .arg(opt(
                "log2file",
                Some('f'),
                "yes|no",
                "Should the job log into a file?",
                yes_no(self.log2file),
                flag,
            ))
            .arg(opt(
                "log2stdout",
                Some('o'),
                "yes|no",
                "Should the job log to stdout?",
                yes_no(self.log2stdout),
                flag,
            ))
            .arg(opt(
                "log2stderr",
                Some('e'),
                "yes|no",
                "Should the job log to stderr?",
                yes_no(self.log2stderr),
                flag,
            ))
            .arg(opt(
                "basedir",
                None,
                "DIR",
                "Where log files go: DIR/<project>/<job>/",
                self.basedir
                    .as_ref()
                    .map_or("~/ll.sisyphus".into(), |d| d.display().to_string()),
                path,
            ))
            .arg(opt(
                "formatlogline",
                None,
                "FORMAT",
                "Line format: {time} {starttime} {tags} {line}",
                self.formatlogline.as_deref().unwrap_or("ll.sisyphus' own"),
                text,
            ))
            .arg(opt(
                "keepfilelogs",
                None,
                "DAYS",
                "Remove log files older than this",
                self.keepfilelogs.map_or("none (keep)".into(), in_days),
                days,
            ))
            .arg(opt(
                "compressfilelogs",
                None,
                "DAYS",
                "Compress log files older than this",
                self.compressfilelogs.map_or("none (never)".into(), in_days),
                days,
            ))
            .arg(
                opt(
                    "compressmode",
                    None,
                    "MODE",
                    "Compress with gzip, bzip2 or lzma (xz)",
                    self.compressmode.as_str(),
                    PossibleValuesParser::new(["gzip", "bzip2", "lzma", "xz"])
                        .try_map(|m| m.parse::<Compression>()),
                )
                .hide_possible_values(true),
            )
            .arg(opt(
                "encoding",
                None,
                "ENCODING",
                "Encoding of the log file (only utf-8)",
                &self.encoding,
                text,
            ))
            .arg(
                opt(
                    "errors",
                    None,
                    "METHOD",
                    "Encoding errors: strict or replace (no effect here)",
                    "strict",
                    PossibleValuesParser::new(["strict", "replace"]),
                )
                .hide_possible_values(true),
            )
            .next_help_heading("Failure e-mail")
            .arg(opt(
                "fromemail",
                None,
                "ADDRESS",
                "The sender address of the failure report",
                or_none(&self.fromemail),
                email,
            ))
            .arg(opt(
                "toemail",
                None,
                "ADDRESS",
                "Where failure reports are sent",
                or_none(&self.toemail),
                email,
            ))
            .arg(opt(
                "smtphost",
                None,
                "HOSTNAME",
                "The SMTP server that sends the failure report",
                or_none(&self.smtphost),
                text,
            ))
            .arg(opt(
                "smtpport",
                None,
                "PORT",
                "The SMTP server's port",
                self.smtpport,
                number::<u16>,
            ))
            .arg(opt(
                "smtpuser",
                None,
                "USER",
                "The user name to log into the SMTP server",
                or_none(&self.smtpuser),
                text,
            ))
            .arg(opt(
                "smtppassword",
                None,
                "PASSWORD",
                "The password to log into the SMTP server",
                secret(&self.smtppassword),
                hidden,
            ))
            .arg(opt(
                "maxemailerrors",
                None,
                "INTEGER",
                "Most errors and messages in the failure report",
                self.maxemailerrors,
                number::<u32>,
            ))
            .next_help_heading("Mattermost")
            .arg(opt(
                "mattermost_url",
                None,
                "URL",
                "Where to post: https://HOST/api/v4/posts",
                or_none(&self.mattermost_url),
                url,
            ))
            .arg(opt(
                "mattermost_channel",
                None,
                "ID",
                "The Mattermost channel's id",
                or_none(&self.mattermost_channel),
                text,
            ))
            .arg(opt(
                "mattermost_token",
                None,
                "AUTH",
                "The personal access token to post with",
                secret(&self.mattermost_token),
                hidden,
            ))
            .next_help_heading("Sentry")
            .arg(opt(
                "sentry_dsn",
                None,
                "DSN",
                "Sentry DSN (https://KEY@HOST/PROJECT)",
                secret(&self.sentry_dsn),
                hidden,
            ))
            .arg(opt(
                "sentry_environment",
                None,
                "ENVIRONMENT",
                "Environment reported to Sentry",
                or_none(&self.sentry_environment),
                text,
            ))
            .arg(opt(
                "sentry_release",
                None,
                "RELEASE",
                "Release reported to Sentry",
                or_none(&self.sentry_release),
                text,
            ))
            .arg(opt(
                "sentry_debug",
                None,
                "yes|no",
                "Activate Sentry debug mode?",
                yes_no(self.sentry_debug),
                flag,
            ))
    }

    /// Applies command-line flags (without the program's name) over the fields, then checks the
    /// whole: [`Options::command_line`] with [`Options::command`].
    pub fn apply_args<I, S>(&mut self, args: I) -> Result<(), clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString> + Clone,
    {
        self.command_line(self.command(), args)
    }

    /// Parses `args` (without the program's name) with `command` (built by
    /// [`Options::command`], perhaps with an about text and a version), sets every option given
    /// over its field — flags beat the fields — and checks the whole. Everything that ends the
    /// program comes back as a clap error: a refused flag or value (exit code 2) and also
    /// `--help` and `--version` (exit code 0); print it and exit with its `exit_code()`.
    pub fn command_line<I, S>(&mut self, mut command: Command, args: I) -> Result<(), clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString> + Clone,
    {
        let program = OsString::from(command.get_name());
        let mut m = command.try_get_matches_from_mut(
            std::iter::once(program).chain(args.into_iter().map(Into::into)),
        )?;
        set(&mut m, "projectname", &mut self.projectname);
        set(&mut m, "jobname", &mut self.jobname);
        set_some(&mut m, "identifier", &mut self.identifier);
        set(&mut m, "maxtime", &mut self.maxtime);
        set(&mut m, "waitchildbreak", &mut self.waitchildbreak);
        set(&mut m, "fork", &mut self.fork);
        set(&mut m, "noisykills", &mut self.noisykills);
        set(&mut m, "notify", &mut self.notify);
        set(&mut m, "proctitle", &mut self.proctitle);
        set(&mut m, "repeat", &mut self.repeat);
        set_some(&mut m, "nextrun", &mut self.nextrun);
        set(&mut m, "exit_on_error", &mut self.exit_on_error);
        set(&mut m, "healthcheck", &mut self.healthcheck);
        set_some(&mut m, "maxhealthcheckage", &mut self.maxhealthcheckage);
        set(&mut m, "log2file", &mut self.log2file);
        set(&mut m, "log2stdout", &mut self.log2stdout);
        set(&mut m, "log2stderr", &mut self.log2stderr);
        set_some(&mut m, "basedir", &mut self.basedir);
        set_some(&mut m, "formatlogline", &mut self.formatlogline);
        set_some(&mut m, "keepfilelogs", &mut self.keepfilelogs);
        set_some(&mut m, "compressfilelogs", &mut self.compressfilelogs);
        set(&mut m, "compressmode", &mut self.compressmode);
        set(&mut m, "encoding", &mut self.encoding);
        set_some(&mut m, "fromemail", &mut self.fromemail);
        set_some(&mut m, "toemail", &mut self.toemail);
        set_some(&mut m, "smtphost", &mut self.smtphost);
        set(&mut m, "smtpport", &mut self.smtpport);
        set_some(&mut m, "smtpuser", &mut self.smtpuser);
        set_some(&mut m, "smtppassword", &mut self.smtppassword);
        set(&mut m, "maxemailerrors", &mut self.maxemailerrors);
        set_some(&mut m, "mattermost_url", &mut self.mattermost_url);
        set_some(&mut m, "mattermost_channel", &mut self.mattermost_channel);
        set_some(&mut m, "mattermost_token", &mut self.mattermost_token);
        if let Some(dsn) = m.remove_one::<Secret>("sentry_dsn") {
            // Checked here rather than by a value parser, whose message would repeat the value.
            if !is_sentry_dsn(dsn.expose()) {
                return Err(command.error(
                    ErrorKind::ValueValidation,
                    "--sentry_dsn: not a Sentry DSN (https://KEY@HOST/PROJECT)",
                ));
            }
            self.sentry_dsn = Some(dsn);
        }
        set_some(&mut m, "sentry_environment", &mut self.sentry_environment);
        set_some(&mut m, "sentry_release", &mut self.sentry_release);
        set(&mut m, "sentry_debug", &mut self.sentry_debug);
        self.check()
            .map_err(|e| command.error(ErrorKind::ValueValidation, e))
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

/// Below the options in `--help`.
const AFTER_HELP: &str = "\
Flags beat the job's own settings, which beat ll.sisyphus' defaults: the defaults shown are this
job's. yes|no is true, yes, on, 1, false, no, off or 0. SECONDS is a number (90, 1.5) or a
duration (90s, 5m, 1h 30m); DAYS a number of days (30, 0.5) or a duration (12h).";

/// One option: ll.sisyphus' long name (the field's), its short form, metavariable and help with
/// the default shown; it takes one value, which may start with `-` (a password may), and a later
/// occurrence beats an earlier one.
fn opt(
    name: &'static str,
    short: Option<char>,
    value: &'static str,
    help: &str,
    default: impl std::fmt::Display,
    parser: impl IntoResettable<ValueParser>,
) -> Arg {
    let arg = Arg::new(name)
        .long(name)
        .value_name(value)
        .help(format!("{help} [default: {default}]"))
        .action(ArgAction::Set)
        .allow_hyphen_values(true)
        .value_parser(parser);
    match short {
        Some(c) => arg.short(c),
        None => arg,
    }
}

/// The field takes the flag's value, if given.
fn set<T: Clone + Send + Sync + 'static>(m: &mut ArgMatches, name: &str, field: &mut T) {
    if let Some(v) = m.remove_one::<T>(name) {
        *field = v;
    }
}

fn set_some<T: Clone + Send + Sync + 'static>(
    m: &mut ArgMatches,
    name: &str,
    field: &mut Option<T>,
) {
    if let Some(v) = m.remove_one::<T>(name) {
        *field = Some(v);
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn or_none(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

/// A duration as `--help` shows it: `90` as `1m 30s`.
fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Whole days as a number (ll.sisyphus' unit), anything else as a duration.
fn in_days(d: Duration) -> String {
    match d.as_secs() {
        s if d.subsec_nanos() == 0 && s % 86_400 == 0 => (s / 86_400).to_string(),
        _ => duration(d),
    }
}

fn text(v: &str) -> Result<String, String> {
    Ok(v.to_string())
}

fn path(v: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(v))
}

/// A secret is taken as it is, and never echoed in a message.
fn hidden(v: &str) -> Result<Secret, String> {
    Ok(Secret::new(v))
}

/// ll.sisyphus' flag values: false, no, off, 0, true, yes, on, 1 (in any case).
fn flag(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err("expected true, yes, on, 1, false, no, off or 0".into()),
    }
}

/// A number of seconds (`90`, `1.5`) or a duration (`90s`, `5m`, `1h 30m`).
fn seconds(v: &str) -> Result<Duration, String> {
    if let Ok(s) = v.trim().parse::<f64>() {
        return Duration::try_from_secs_f64(s)
            .map_err(|_| "not a number of seconds (at least 0)".to_string());
    }
    humantime::parse_duration(v.trim())
        .map_err(|_| "not a number of seconds or a duration like 5m".into())
}

/// A number of days (ll.sisyphus' keepfilelogs/compressfilelogs), or a duration.
fn days(v: &str) -> Result<Duration, String> {
    match v.trim().parse::<f64>() {
        Ok(d) => Duration::try_from_secs_f64(d * 86_400.0)
            .map_err(|_| "not a number of days (at least 0)".into()),
        Err(_) => humantime::parse_duration(v.trim())
            .map_err(|_| "not a number of days or a duration like 12h".into()),
    }
}

fn next_run(v: &str) -> Result<NextRun, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(v.trim()) {
        return Ok(NextRun::At(at.with_timezone(&Utc)));
    }
    seconds(v)
        .map(NextRun::After)
        .map_err(|_| "not seconds, a duration or an RFC 3339 instant".into())
}

fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| "not a whole number in range".into())
}

fn email(v: &str) -> Result<String, String> {
    match v.split_once('@') {
        Some((user, host)) if !user.is_empty() && host.contains('.') && !v.contains(' ') => {
            Ok(v.to_string())
        }
        _ => Err("not an e-mail address".into()),
    }
}

fn url(v: &str) -> Result<String, String> {
    if (v.starts_with("http://") || v.starts_with("https://")) && v.len() > 8 {
        Ok(v.to_string())
    } else {
        Err("not an http(s) URL".into())
    }
}

/// `https://KEY@HOST/PROJECT`.
fn is_sentry_dsn(v: &str) -> bool {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    matches!(rest.and_then(|r| r.split_once('@')),
        Some((key, host)) if !key.is_empty() && host.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job's own settings: maxtime and repeat differ from ll.sisyphus' defaults.
    fn job() -> Options {
        let mut o = Options::new("P", "J");
        o.maxtime = Duration::from_secs(60);
        o.repeat = true;
        o
    }

    fn apply(args: &[&str]) -> Result<Options, clap::Error> {
        let mut o = job();
        o.apply_args(args.iter().copied())?;
        Ok(o)
    }

    fn refused(args: &[&str]) -> clap::Error {
        match apply(args) {
            Ok(o) => panic!("{args:?} accepted: {o:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_command_is_well_formed() {
        job().command().debug_assert();
    }

    #[test]
    fn fields_are_defaults_and_flags_beat_them() {
        let o = apply(&[]).expect("no flags");
        assert_eq!(o, job(), "without flags the job's own settings stand");
        assert_eq!((o.maxtime, o.repeat), (Duration::from_secs(60), true));
        assert!(
            o.fork,
            "what the job does not set keeps ll.sisyphus' default"
        );
        let o = apply(&["--maxtime", "5", "--repeat=no", "-p", "Q", "-j", "K"]).expect("flags");
        assert_eq!(o.maxtime, Duration::from_secs(5));
        assert!(!o.repeat);
        assert_eq!((o.projectname.as_str(), o.jobname.as_str()), ("Q", "K"));
        let o = apply(&["-m", "1m 30s", "-r", "yes", "-f", "0", "-n", "1"]).expect("short flags");
        assert_eq!(o.maxtime, Duration::from_secs(90));
        assert!(o.repeat && !o.log2file && o.notify);
        let o = apply(&["-o", "on", "-e", "YES", "--fork", "off"]).expect("-o, -e, on/off");
        assert!(o.log2stdout && o.log2stderr && !o.fork);
        let o = apply(&["-m", "5", "--maxtime", "7"]).expect("a flag twice");
        assert_eq!(o.maxtime, Duration::from_secs(7), "the later one wins");
        let o = apply(&["--smtpuser", "u", "--smtppassword", "-dash-"]).expect("hyphen value");
        assert_eq!(o.smtppassword.as_ref().map(Secret::expose), Some("-dash-"));
    }

    #[test]
    fn every_option_has_a_flag() {
        let o = apply(&[
            "--identifier",
            "id7",
            "--fork",
            "false",
            "--waitchildbreak",
            "0.5",
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
        assert_eq!(o.waitchildbreak, Duration::from_millis(500));
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
        assert_eq!(o.mattermost_token.as_ref().map(Secret::expose), Some("tok"));
        assert_eq!(
            o.sentry_dsn.as_ref().map(Secret::expose),
            Some("https://key@o0.ingest.sentry.io/0")
        );
        let debug = format!("{o:?}");
        for secret in ["secret", "tok\"", "key@"] {
            assert!(!debug.contains(secret), "{secret} in Debug: {debug}");
        }
        assert_eq!(o.sentry_environment.as_deref(), Some("prod"));
        let o = apply(&["--nextrun", "2026-12-01T10:00:00Z"]).expect("instant");
        assert!(matches!(o.nextrun, Some(NextRun::At(_))));
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--maxtime", "soon"], "--maxtime"),
            (&["--maxtime", "0"], "--maxtime"),
            (&["-m", "-5"], "--maxtime"),
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
            (&["stray"], "stray"),
        ];
        for (args, flag) in cases {
            let e = refused(args);
            let text = e.to_string();
            assert_eq!(e.exit_code(), 2, "{args:?}: {text}");
            assert!(e.use_stderr(), "{args:?}: {text}");
            assert!(text.contains(flag), "{args:?} should name {flag}: {text}");
        }
    }

    #[test]
    fn a_secret_is_never_echoed_in_a_refusal() {
        let text = refused(&["--sentry_dsn", "https://s3cr3t.example.org"]).to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn an_unknown_flag_gets_the_closest_one() {
        for (typo, meant) in [
            ("--maxtim", "--maxtime"),
            ("--log2files", "--log2file"),
            ("--exit-on-error", "--exit_on_error"),
            ("--sentry-dsn", "--sentry_dsn"),
        ] {
            let e = refused(&[typo, "1"]);
            assert_eq!(e.kind(), ErrorKind::UnknownArgument, "{typo}");
            assert_eq!(e.exit_code(), 2);
            let text = e.to_string();
            assert!(
                text.contains("similar argument exists") && text.contains(&format!("'{meant}'")),
                "{typo} should suggest {meant}: {text}"
            );
        }
    }

    #[test]
    fn help_shows_every_option_with_the_job_s_own_defaults() {
        let mut o = job();
        o.keepfilelogs = Some(Duration::from_secs(30 * 86_400));
        o.smtpuser = Some("mailer".into());
        o.smtppassword = Some(Secret::new("hunter2"));
        o.sentry_dsn = Some(Secret::new("https://pubkey@o0.ingest.sentry.io/0"));
        let help = o.command().render_help().to_string();
        for (flag, default) in [
            ("-p, --projectname <NAME>", "P"),
            ("-j, --jobname <NAME>", "J"),
            ("-m, --maxtime <SECONDS>", "1m"),
            ("-r, --repeat <yes|no>", "yes"),
            ("--fork <yes|no>", "yes"),
            ("--waitchildbreak <SECONDS>", "1s"),
            ("-f, --log2file <yes|no>", "yes"),
            ("-o, --log2stdout <yes|no>", "no"),
            ("-e, --log2stderr <yes|no>", "no"),
            ("-n, --notify <yes|no>", "no"),
            ("--keepfilelogs <DAYS>", "30"),
            ("--compressmode <MODE>", "bzip2"),
            ("--smtpport <PORT>", "25"),
            ("--smtpuser <USER>", "mailer"),
            ("--smtppassword <PASSWORD>", "***"),
            ("--mattermost_token <AUTH>", "none"),
            ("--sentry_dsn <DSN>", "***"),
        ] {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(flag))
                .unwrap_or_else(|| panic!("no {flag} in\n{help}"));
            assert!(
                line.ends_with(&format!("[default: {default}]")),
                "{flag}: {line}"
            );
        }
        assert!(
            !help.contains("hunter2") && !help.contains("pubkey"),
            "{help}"
        );
        let options = o.command().get_arguments().count();
        assert_eq!(
            options, 38,
            "ll.sisyphus' 36 options, --formatlogline and --basedir"
        );
        assert_eq!(help.matches("[default: ").count(), options, "{help}");
    }

    #[test]
    fn help_and_version_end_the_program_successfully() {
        for (arg, kind) in [
            ("--help", ErrorKind::DisplayHelp),
            ("-h", ErrorKind::DisplayHelp),
            ("--version", ErrorKind::DisplayVersion),
            ("-V", ErrorKind::DisplayVersion),
        ] {
            let mut o = job();
            let e = o
                .command_line(o.command().version("1.0"), [arg])
                .expect_err(arg);
            assert_eq!((e.kind(), e.exit_code()), (kind, 0), "{arg}");
        }
    }
}
