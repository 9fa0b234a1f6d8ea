//! Job definitions: what people write ([`JobDefinition`]) and what has been checked ([`JobSpec`]).
//!
//! "Parse, don't validate": a [`JobDefinition`] is plain data with the keys of a jobs file;
//! [`JobDefinition::validate`] is the only way to a [`JobSpec`], and the client writes only
//! `JobSpec`s. A bad definition therefore never reaches the database (invariant `refused-before-written`), and the error
//! names every field that is wrong and why.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};

use crate::notifications::{check_rules, Rule, RuleDefinition};
use crate::resources::Template;
use crate::run::{Catchup, JobRef, Target};
use crate::schedule::{format_duration, CronExpr, Schedule};

/// The default time-to-live of a slot: how late a run may still start.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The default first retry delay; each further retry waits twice as long as the one before.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(10);
/// The default lease of a job's resource locks (jobspy's usual `duration=300`).
pub const DEFAULT_LOCK_LEASE: Duration = Duration::from_secs(300);
/// The shortest lock lease: a guardian refreshes its runs' locks on each heartbeat.
pub const MIN_LOCK_LEASE: Duration = Duration::from_secs(5);
/// The default time a run waits for busy locks (jobspy's usual `wait=900`).
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(900);
/// The longest duration any key of a definition may hold: 100 years (of 365.25 days). Far
/// beyond any sensible value, and far below what timestamps and intervals can hold, so no sum
/// the scheduler or the guardian makes with it can overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 36_525 * 864);
/// The largest count (`iterations`, `retries`, `concurrency`): 2^31 − 1, PostgreSQL's `integer`.
pub const MAX_COUNT: u32 = i32::MAX as u32;

/// A job as written in a jobs file (`[[job]]` table) or built in Rust. All keys but `project`,
/// `name` and `command` are optional; see README.md for each key's meaning and default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDefinition {
    pub project: Option<String>,
    pub name: Option<String>,
    /// An argv array; or, with `shell = true`, one line of shell.
    pub command: Option<Command>,
    pub shell: Option<bool>,
    /// Variables the job gets: a string each, or `{ secret = "NAME" }`, resolved by the guardian
    /// on its host when the run starts (only the reference is stored).
    pub env: Option<BTreeMap<String, EnvValue>>,
    pub workdir: Option<String>,
    /// One cron line or several.
    pub cron: Option<CronLines>,
    /// Every this long after the previous run ended, e.g. `"5m"`.
    pub interval: Option<Text>,
    /// Once, at this time.
    pub at: Option<Text>,
    pub timezone: Option<String>,
    pub start: Option<Text>,
    pub end: Option<Text>,
    pub iterations: Option<i64>,
    pub ttl: Option<Text>,
    pub catchup: Option<String>,
    pub jitter: Option<Text>,
    pub maxtime: Option<Text>,
    pub retries: Option<i64>,
    pub retry_backoff: Option<Text>,
    pub concurrency: Option<i64>,
    pub target: Option<String>,
    pub paused: Option<bool>,
    pub userdata: Option<serde_json::Value>,
    /// The user to run as (the guardian must be root and allow it).
    pub run_as: Option<String>,
    /// Local log files older than this are removed.
    pub keep_logs: Option<Text>,
    /// Local log files older than this are compressed.
    pub compress_logs: Option<Text>,
    /// `gzip`, `bzip2` (default) or `xz`.
    pub compress_mode: Option<String>,
    /// Resources read: shared locks, each must have been written as an output before.
    /// Names may hold placeholders of the slot time, e.g. `reporting.events.{date}`.
    pub inputs: Option<Vec<String>>,
    /// Resources written: exclusive locks; written when the run ends successful or uneventful.
    pub outputs: Option<Vec<String>>,
    /// How long a lock holds without being refreshed (the guardian refreshes it while the run
    /// goes on). Default 5m.
    pub lock_lease: Option<Text>,
    /// How long a run waits for busy locks before it fails. Default 15m.
    pub lock_wait: Option<Text>,
    /// Written outputs count as unwritten after this long. Default: never.
    pub outputs_expire: Option<Text>,
    /// Run when every input has been written since the last successful run (data trigger).
    pub on_inputs: Option<bool>,
    /// The job is unhealthy when its last good run ended longer ago than this. Default: any age.
    pub max_health_age: Option<Text>,
    /// Who hears about what (rules naming the dispatcher's channels). Unset: the project's
    /// defaults; an empty list: nobody.
    pub notify: Option<Vec<RuleDefinition>>,
    /// A run still going after this raises a `slow` notification (before maxtime kills it).
    pub warn_after: Option<Text>,
    /// A good run that ends sooner than this raises a `too_fast` notification.
    pub min_duration: Option<Text>,
    /// The most memory the run's processes may use together (cgroup `memory.max`), e.g. `"512M"`,
    /// `"2G"` or a number of bytes. Applied where the host runs jobs in cgroups with the memory
    /// controller delegated; elsewhere the run's log says it was not applied.
    pub memory_max: Option<Size>,
    /// The run's share of CPU against other runs (cgroup `cpu.weight`, 1 to 10000, default 100).
    pub cpu_weight: Option<i64>,
    /// Parameters a run may be given (`sisyctl run P/N --param NAME=VALUE`), each with an
    /// optional default and choices; see [`crate::params`].
    pub params: Option<crate::params::Params>,
    /// How the guardian runs the job and reads what it prints: `sisyphus` (default) or
    /// `ll.sisyphus` (an existing Python ll.sisyphus job, run unmodified; see [`JobFormat`]).
    pub format: Option<String>,
    /// Calendars whose days and ranges this job's slots skip (each such slot is recorded as a
    /// `skipped` run naming the calendar), e.g. `["nl-holidays", "freeze-2026"]`.
    pub skip_on: Option<Vec<String>>,
    /// Calendars outside of which this job's slots are skipped, e.g. `["business-days"]` (a slot
    /// runs when any of them contains it).
    pub only_on: Option<Vec<String>>,
    /// What a slot does that comes due while the job is at its concurrency: `queue` (default),
    /// `skip`, `buffer_one` or `replace` (see [`Overlap`]).
    pub overlap: Option<String>,
}

/// A size as written: a number of bytes, or text with a binary unit (`K`, `M`, `G`, `T`; `KiB`
/// etc. too, and `B` or nothing for bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(i64),
    Text(String),
}

/// The smallest `memory_max`: the kernel's page.
pub const MIN_MEMORY_MAX: u64 = 4096;
/// The largest `memory_max`: 1 PiB.
pub const MAX_MEMORY_MAX: u64 = 1 << 50;

/// Bytes from a [`Size`], within [`MIN_MEMORY_MAX`]..=[`MAX_MEMORY_MAX`].
pub fn parse_size(size: &Size) -> Result<u64, String> {
    let bytes = match size {
        Size::Bytes(n) => u64::try_from(*n).map_err(|_| format!("{n} is negative"))?,
        Size::Text(text) => {
            let t = text.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (digits, unit) = t.split_at(split);
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("`{text}` is not a size such as 512M or 2G"))?;
            let shift = match unit.trim().to_ascii_uppercase().as_str() {
                "" | "B" => 0,
                "K" | "KB" | "KIB" => 10,
                "M" | "MB" | "MIB" => 20,
                "G" | "GB" | "GIB" => 30,
                "T" | "TB" | "TIB" => 40,
                _ => return Err(format!("`{text}`: unknown unit (use K, M, G or T)")),
            };
            n.checked_mul(1 << shift)
                .ok_or_else(|| format!("`{text}` is more than 1P"))?
        }
    };
    if bytes < MIN_MEMORY_MAX {
        return Err(format!(
            "{bytes} bytes is less than {MIN_MEMORY_MAX} (one page)"
        ));
    }
    if bytes > MAX_MEMORY_MAX {
        return Err(format!("{bytes} bytes is more than 1P"));
    }
    Ok(bytes)
}

/// A command: an argv array, or one line of shell (only with `shell = true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Argv(Vec<String>),
    Line(String),
}

/// One cron line or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CronLines {
    One(String),
    Many(Vec<String>),
}

/// A duration or a time as written: a string (`"90s"`, `"2026-03-29T02:30:00"`), a number of
/// seconds, or a TOML date-time. Kept as text until validation, so errors can quote it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.to_string())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(Text(s)),
            toml::Value::Integer(i) => Ok(Text(format!("{i}s"))),
            toml::Value::Float(f) if !f.is_finite() => Err(serde::de::Error::custom(format!(
                "{f} is not a number of seconds"
            ))),
            toml::Value::Float(f) if f < 0.0 => Ok(Text(format!("{f}s"))),
            // Saturates at i64::MAX ms, which validation refuses as longer than MAX_DURATION.
            toml::Value::Float(f) => Ok(Text(format!("{}ms", (f * 1000.0).round() as i64))),
            toml::Value::Datetime(t) => Ok(Text(t.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, a number of seconds or a date-time, found {}",
                other.type_str()
            ))),
        }
    }
}

/// A value of a job's `env`: text the job gets as it is, or a reference to a secret
/// (`{ secret = "NAME" }` in a jobs file, `{"secret": "NAME"}` in `jobs.env`) that the guardian
/// resolves on its host when the run starts, from the file `NAME` in its `--secrets-dir` or
/// else its variable `SISYPHUS_SECRET_NAME`. Only the reference is stored or shown; the value
/// never leaves the guardian's host, and the guardian masks it (`***`) in what the run prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    Plain(String),
    Secret { secret: String },
}

/// The longest secret name.
pub const MAX_SECRET_NAME: usize = 200;

/// A secret's name: 1 to [`MAX_SECRET_NAME`] ASCII letters, digits or `_` — a file name in the
/// guardian's `--secrets-dir` and the tail of a variable name, so nothing else is allowed.
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SECRET_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether an env key looks like it holds a secret (it contains `PASSWORD`, `TOKEN`, `SECRET` or
/// `KEY`, in any case): `apply` warns when such a key has a plain value.
pub fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_uppercase();
    ["PASSWORD", "TOKEN", "SECRET", "KEY"]
        .iter()
        .any(|word| key.contains(word))
}

impl EnvValue {
    /// A reference to the secret `name`.
    pub fn secret(name: impl Into<String>) -> EnvValue {
        EnvValue::Secret {
            secret: name.into(),
        }
    }

    /// The secret's name, for a reference.
    pub fn secret_name(&self) -> Option<&str> {
        match self {
            EnvValue::Plain(_) => None,
            EnvValue::Secret { secret } => Some(secret),
        }
    }
}

impl From<&str> for EnvValue {
    fn from(s: &str) -> EnvValue {
        EnvValue::Plain(s.to_string())
    }
}

impl From<String> for EnvValue {
    fn from(s: String) -> EnvValue {
        EnvValue::Plain(s)
    }
}

/// A string, or a table with the one key `secret` (what else is wrong is said by name: an
/// untagged enum would only say that nothing matched).
impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EnvValue, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = EnvValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or { secret = \"NAME\" }")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue::Plain(v.to_string()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<EnvValue, E> {
                Ok(EnvValue::Plain(v))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<EnvValue, A::Error> {
                use serde::de::Error;
                let mut secret: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "secret" {
                        return Err(A::Error::custom(format!(
                            "unknown key `{key}`: a secret is written {{ secret = \"NAME\" }}"
                        )));
                    }
                    if secret.is_some() {
                        return Err(A::Error::duplicate_field("secret"));
                    }
                    secret = Some(map.next_value::<String>()?);
                }
                match secret {
                    Some(secret) => Ok(EnvValue::Secret { secret }),
                    None => Err(A::Error::custom(
                        "a table here needs the key `secret`: { secret = \"NAME\" }",
                    )),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl JobDefinition {
    /// A definition with the three required keys; set the rest with the builder methods or
    /// struct update syntax (`JobDefinition { retries: Some(3), ..JobDefinition::new(...) }`).
    pub fn new<I, S>(project: &str, name: &str, argv: I) -> JobDefinition
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        JobDefinition {
            project: Some(project.to_string()),
            name: Some(name.to_string()),
            command: Some(Command::Argv(argv.into_iter().map(Into::into).collect())),
            ..JobDefinition::default()
        }
    }

    /// Adds a cron line.
    pub fn cron(mut self, line: &str) -> JobDefinition {
        self.cron = Some(match self.cron.take() {
            None => CronLines::One(line.to_string()),
            Some(CronLines::One(first)) => CronLines::Many(vec![first, line.to_string()]),
            Some(CronLines::Many(mut lines)) => {
                lines.push(line.to_string());
                CronLines::Many(lines)
            }
        });
        self
    }

    /// Runs every `duration` after the previous run ended, e.g. `"5m"`.
    pub fn interval(mut self, duration: &str) -> JobDefinition {
        self.interval = Some(duration.into());
        self
    }

    /// Sets the time zone the cron lines are read in.
    pub fn timezone(mut self, zone: &str) -> JobDefinition {
        self.timezone = Some(zone.to_string());
        self
    }

    /// How the job is named in messages before its name is known to be valid.
    fn label(&self, position: Option<usize>) -> String {
        match (&self.project, &self.name, position) {
            (Some(p), Some(n), _) => format!("{p}/{n}"),
            (_, _, Some(i)) => format!("#{}", i + 1),
            _ => "(unnamed)".to_string(),
        }
    }

    /// Checks every field and returns the checked job, or every problem found.
    pub fn validate(&self) -> Result<JobSpec, InvalidJob> {
        self.validate_at(None)
    }

    /// As [`validate`](Self::validate), naming the job by its position in a file if it has no name.
    pub fn validate_at(&self, position: Option<usize>) -> Result<JobSpec, InvalidJob> {
        let mut v = Validator {
            problems: Vec::new(),
        };
        let project = v.required("project", self.project.as_deref(), check_project);
        let name = v.required("name", self.name.as_deref(), check_name);
        let shell = self.shell.unwrap_or(false);
        let command = v.field("command", check_command(self.command.as_ref(), shell));
        let env = v.field("env", check_env(self.env.clone().unwrap_or_default()));
        let workdir = v.field("workdir", check_workdir(self.workdir.as_deref()));
        let timezone = v.field("timezone", check_zone(self.timezone.as_deref()));
        let tz = timezone.unwrap_or(Tz::UTC);
        let schedule = self.schedule(&mut v, tz);
        let start = v.field("start", opt(self.start.as_ref(), |t| parse_time(t, tz)));
        let end = v.field("end", opt(self.end.as_ref(), |t| parse_time(t, tz)));
        if let (Some(Some(s)), Some(Some(e))) = (start, end) {
            if e <= s {
                v.push(
                    "end",
                    format!("{} is not after start {}", e.to_rfc3339(), s.to_rfc3339()),
                );
            }
        }
        let iterations = v.field("iterations", opt_count(self.iterations, 1));
        let ttl = v.field("ttl", positive(self.ttl.as_ref(), DEFAULT_TTL));
        let catchup = v.field(
            "catchup",
            self.catchup
                .as_deref()
                .map_or(Ok(Catchup::All), |c| c.parse::<Catchup>()),
        );
        let jitter = v.field("jitter", non_negative(self.jitter.as_ref()));
        let maxtime = v.field(
            "maxtime",
            opt(self.maxtime.as_ref(), |t| positive(Some(t), Duration::ZERO)),
        );
        let retries = v.field("retries", count(self.retries, 0, 0));
        let retry_backoff = v.field(
            "retry_backoff",
            self.retry_backoff
                .as_ref()
                .map_or(Ok(DEFAULT_RETRY_BACKOFF), |t| non_negative(Some(t))),
        );
        let concurrency = v.field("concurrency", count(self.concurrency, 1, 1));
        let target = v.field(
            "target",
            self.target
                .as_deref()
                .map_or(Ok(Target::default()), str::parse),
        );
        let userdata = v.field("userdata", check_userdata(self.userdata.clone()));
        let run_as = v.field("run_as", check_user(self.run_as.as_deref()));
        let keep_logs = v.field(
            "keep_logs",
            opt(self.keep_logs.as_ref(), |t| {
                positive(Some(t), Duration::ZERO)
            }),
        );
        let compress_logs = v.field(
            "compress_logs",
            opt(self.compress_logs.as_ref(), |t| {
                positive(Some(t), Duration::ZERO)
            }),
        );
        let compress_mode = v.field(
            "compress_mode",
            self.compress_mode
                .as_deref()
                .map_or(Ok(Compression::Bzip2), str::parse),
        );
        let max_health_age = v.field(
            "max_health_age",
            opt(self.max_health_age.as_ref(), |t| {
                positive(Some(t), Duration::ZERO)
            }),
        );
        let notify = v.field(
            "notify",
            self.notify.as_deref().map(check_rules).transpose(),
        );
        let warn_after = v.field(
            "warn_after",
            opt(self.warn_after.as_ref(), |t| {
                positive(Some(t), Duration::ZERO)
            }),
        );
        let min_duration = v.field(
            "min_duration",
            opt(self.min_duration.as_ref(), |t| {
                positive(Some(t), Duration::ZERO)
            }),
        );
        let memory_max = v.field(
            "memory_max",
            self.memory_max.as_ref().map(parse_size).transpose(),
        );
        let cpu_weight = v.field(
            "cpu_weight",
            self.cpu_weight
                .map(|w| match w {
                    1..=10_000 => Ok(w as u32),
                    _ => Err(format!("{w} is not within 1 to 10000")),
                })
                .transpose(),
        );
        let format = v.field(
            "format",
            self.format
                .as_deref()
                .map_or(Ok(JobFormat::Sisyphus), str::parse),
        );
        if let Some(format) = format {
            v.field("format", check_format(format, shell));
        }
        let overlap = v.field(
            "overlap",
            self.overlap
                .as_deref()
                .map_or(Ok(Overlap::Queue), str::parse),
        );
        if let (Some(Some(warn)), Some(Some(max))) = (&warn_after, &maxtime) {
            if warn >= max {
                v.push(
                    "warn_after",
                    format!(
                        "{} is not shorter than maxtime {}: the run is killed before it is slow",
                        format_duration(*warn),
                        format_duration(*max)
                    ),
                );
            }
        }
        let skip_on = v.field("skip_on", check_calendars(self.skip_on.as_deref()));
        let only_on = v.field("only_on", check_calendars(self.only_on.as_deref()));
        let resources = self.resources(&mut v);
        if let Some(r) = &resources {
            if r.on_inputs && target.as_ref().is_some_and(|t| t.all) {
                v.push(
                    "on_inputs",
                    "a data-triggered job runs once per fresh set of inputs, so its target must \
                     be `any` (not `all`)"
                        .to_string(),
                );
            }
        }
        if !v.problems.is_empty() {
            return Err(InvalidJob {
                job: self.label(position),
                problems: v.problems,
            });
        }
        // Every checked field is Some here: a None was recorded as a problem above.
        let fields = || {
            Some(SpecFields {
                job: JobRef {
                    project: project?,
                    name: name?,
                },
                command: command?,
                shell,
                env: env?,
                workdir: workdir?,
                schedule: schedule?,
                timezone: tz,
                start: start?,
                end: end?,
                iterations: iterations?,
                ttl: ttl?,
                catchup: catchup?,
                jitter: jitter?,
                maxtime: maxtime?,
                retries: retries?,
                retry_backoff: retry_backoff?,
                concurrency: concurrency?,
                target: target?,
                paused: self.paused.unwrap_or(false),
                userdata: userdata?,
                run_as: run_as?,
                logs: LogSettings {
                    keep: keep_logs?,
                    compress_after: compress_logs?,
                    compression: compress_mode?,
                },
                resources: resources?,
                max_health_age: max_health_age?,
                notify: notify?,
                warn_after: warn_after?,
                min_duration: min_duration?,
                limits: RunLimits {
                    memory_max: memory_max?,
                    cpu_weight: cpu_weight?,
                },
                params: self.params.clone().unwrap_or_default(),
                format: format?,
                skip_on: skip_on?,
                only_on: only_on?,
                overlap: overlap?,
            })
        };
        let fields = fields().ok_or_else(|| InvalidJob::internal(self.label(position)))?;
        // The typed checks again, so that both ways to a `JobSpec` pass the same ones.
        JobSpec::from_fields(fields).map_err(|e| InvalidJob {
            job: self.label(position),
            ..e
        })
    }

    fn resources(&self, v: &mut Validator) -> Option<ResourceSpec> {
        let names = |v: &mut Validator, field, list: &Option<Vec<String>>| {
            let parsed: Result<Vec<Template>, String> =
                list.iter().flatten().map(|n| Template::parse(n)).collect();
            v.field(field, parsed)
        };
        let inputs = names(v, "inputs", &self.inputs);
        let outputs = names(v, "outputs", &self.outputs);
        let lease = v.field(
            "lock_lease",
            positive(self.lock_lease.as_ref(), DEFAULT_LOCK_LEASE).and_then(|d| {
                if d < MIN_LOCK_LEASE {
                    Err(format!(
                        "{} is shorter than {}: the guardian refreshes leases on its heartbeat",
                        format_duration(d),
                        format_duration(MIN_LOCK_LEASE)
                    ))
                } else {
                    Ok(d)
                }
            }),
        );
        let wait = v.field(
            "lock_wait",
            self.lock_wait
                .as_ref()
                .map_or(Ok(DEFAULT_LOCK_WAIT), |t| non_negative(Some(t))),
        );
        let expire = v.field(
            "outputs_expire",
            opt(self.outputs_expire.as_ref(), |t| {
                positive(Some(t), Duration::ZERO)
            }),
        );
        let on_inputs = self.on_inputs.unwrap_or(false);
        if let Some(inputs) = &inputs {
            if on_inputs && inputs.is_empty() {
                v.push(
                    "on_inputs",
                    "a data-triggered job needs at least one input".to_string(),
                );
            }
            if let Some(t) = inputs
                .iter()
                .find(|t| on_inputs && !t.is_fixed() && !t.names_a_date())
            {
                v.push(
                    "inputs",
                    format!(
                        "`{t}`: with on_inputs, a template must name the date ({{date}}, \
                         {{yesterday}}, or {{year}}, {{month}} and {{day}}) so the run's slot \
                         can be read from the name"
                    ),
                );
            }
        }
        if let (Some(i), Some(o)) = (&inputs, &outputs) {
            if let Some(both) = i.iter().find(|t| o.contains(t)) {
                v.push(
                    "outputs",
                    format!("`{both}` is both an input and an output"),
                );
            }
        }
        Some(ResourceSpec {
            inputs: inputs?,
            outputs: outputs?,
            lease: lease?,
            wait: wait?,
            outputs_expire: expire?,
            on_inputs,
        })
    }

    fn schedule(&self, v: &mut Validator, tz: Tz) -> Option<Option<Schedule>> {
        let given: Vec<&str> = [
            self.cron.as_ref().map(|_| "cron"),
            self.interval.as_ref().map(|_| "interval"),
            self.at.as_ref().map(|_| "at"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            v.push(
                given[1],
                format!(
                    "a job has one schedule, but both `{}` and `{}` are set",
                    given[0], given[1]
                ),
            );
            return None;
        }
        if let Some(lines) = &self.cron {
            let lines: Vec<&String> = match lines {
                CronLines::One(l) => vec![l],
                CronLines::Many(ls) => ls.iter().collect(),
            };
            if lines.is_empty() {
                v.push("cron", "the list of cron lines is empty".to_string());
                return None;
            }
            let parsed: Result<Vec<CronExpr>, _> =
                lines.iter().map(|l| CronExpr::parse(l)).collect();
            return v
                .field("cron", parsed.map_err(|e| e.to_string()))
                .map(|c| Some(Schedule::Cron(c)));
        }
        if let Some(interval) = &self.interval {
            return v
                .field("interval", positive(Some(interval), Duration::ZERO))
                .map(|d| Some(Schedule::Interval(d)));
        }
        if let Some(at) = &self.at {
            return v
                .field("at", parse_time(at, tz))
                .map(|t| Some(Schedule::At(t)));
        }
        Some(None)
    }
}

/// A checked job definition. Only the validator makes one: [`JobDefinition::validate`] from a
/// definition as written, or [`JobSpec::from_fields`] from typed fields (a stored row read back),
/// which applies the same checks to the values. Its fields are read through `Deref`
/// (`spec.concurrency`) and cannot be changed afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec(SpecFields);

/// The fields of a job definition, typed. Read them through a [`JobSpec`]; build one only to hand
/// it to [`JobSpec::from_fields`], which checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecFields {
    pub job: JobRef,
    pub command: Vec<String>,
    pub shell: bool,
    /// The job's variables; secrets as references only (their values never leave the guardian's
    /// host).
    pub env: BTreeMap<String, EnvValue>,
    pub workdir: Option<String>,
    /// `None`: runs only when asked.
    pub schedule: Option<Schedule>,
    pub timezone: Tz,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub iterations: Option<u32>,
    pub ttl: Duration,
    pub catchup: Catchup,
    pub jitter: Duration,
    pub maxtime: Option<Duration>,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub concurrency: u32,
    pub target: Target,
    pub paused: bool,
    pub userdata: serde_json::Value,
    pub run_as: Option<String>,
    pub logs: LogSettings,
    pub resources: ResourceSpec,
    /// Unhealthy when the last good run ended longer ago than this.
    pub max_health_age: Option<Duration>,
    /// Notification rules; `None`: the project's defaults.
    pub notify: Option<Vec<Rule>>,
    pub warn_after: Option<Duration>,
    pub min_duration: Option<Duration>,
    /// Limits of the run's cgroup.
    pub limits: RunLimits,
    /// Parameters a run may be given; scheduled runs take the defaults.
    pub params: crate::params::Params,
    /// How the guardian runs the job and reads its output.
    pub format: JobFormat,
    /// Calendars whose times the job's slots skip (names; `sisyphus.calendars`).
    pub skip_on: Vec<String>,
    /// Calendars outside of which the job's slots are skipped (none: no such limit).
    pub only_on: Vec<String>,
    /// What a slot does that comes due while the job is at its concurrency.
    pub overlap: Overlap,
}

impl SpecFields {
    /// Keys of plain (not secret) env values whose names look secret ([`looks_secret`]):
    /// `apply` warns about them, naming the job and the key (never the value).
    pub fn plain_keys_looking_secret(&self) -> Vec<&str> {
        self.env
            .iter()
            .filter(|(k, v)| matches!(v, EnvValue::Plain(_)) && looks_secret(k))
            .map(|(k, _)| k.as_str())
            .collect()
    }
}

impl JobSpec {
    /// The definition as JSON with the jobs file's keys (env values are left out: they may be secret;
    /// `env_secrets` names the secret each secret key refers to).
    pub fn definition_json(&self) -> serde_json::Value {
        let spec = self;
        let d = |x: std::time::Duration| crate::schedule::format_duration(x);
        serde_json::json!({
            "project": spec.job.project,
            "name": spec.job.name,
            "command": spec.command,
            "shell": spec.shell,
            "format": spec.format,
            "env": spec.env.keys().collect::<Vec<_>>(),
            "env_secrets": spec
                .env
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.secret_name()?.to_string())))
                .collect::<std::collections::BTreeMap<String, String>>(),
            "workdir": spec.workdir,
            "schedule": spec.schedule.as_ref().map(|s| s.describe()),
            "timezone": spec.timezone.name(),
            "skip_on": spec.skip_on,
            "only_on": spec.only_on,
            "start": spec.start,
            "end": spec.end,
            "iterations": spec.iterations,
            "ttl": d(spec.ttl),
            "catchup": spec.catchup,
            "jitter": d(spec.jitter),
            "maxtime": spec.maxtime.map(d),
            "retries": spec.retries,
            "retry_backoff": d(spec.retry_backoff),
            "concurrency": spec.concurrency,
            "overlap": spec.overlap,
            "target": spec.target.to_string(),
            "paused": spec.paused,
            "userdata": spec.userdata,
            "max_health_age": spec.max_health_age.map(d),
            "warn_after": spec.warn_after.map(d),
            "min_duration": spec.min_duration.map(d),
            "memory_max": spec.limits.memory_max,
            "cpu_weight": spec.limits.cpu_weight,
            "notify": spec.notify,
        })
    }
}

impl std::ops::Deref for JobSpec {
    type Target = SpecFields;
    fn deref(&self) -> &SpecFields {
        &self.0
    }
}

impl JobSpec {
    /// Checks typed fields as validation checks a written definition: names, command,
    /// environment, paths, counts and durations in range, the window, the data trigger's target
    /// and the run limits. Every problem is reported, each naming its key.
    pub fn from_fields(fields: SpecFields) -> Result<JobSpec, InvalidJob> {
        let problems = check_fields(&fields);
        if problems.is_empty() {
            Ok(JobSpec(fields))
        } else {
            Err(InvalidJob {
                job: fields.job.to_string(),
                problems,
            })
        }
    }

    /// The fields, to change some and check them again with [`from_fields`](Self::from_fields).
    pub fn into_fields(self) -> SpecFields {
        self.0
    }
}

/// The checks of [`JobSpec::from_fields`]; the problems found (none: valid).
fn check_fields(f: &SpecFields) -> Vec<FieldProblem> {
    let mut v = Validator {
        problems: Vec::new(),
    };
    v.field("project", check_project(&f.job.project));
    v.field("name", check_name(&f.job.name));
    let command = if f.shell {
        f.command
            .first()
            .map(|line| Command::Line(line.clone()))
            .filter(|_| f.command.len() == 1)
    } else {
        Some(Command::Argv(f.command.clone()))
    };
    v.field("command", check_command(command.as_ref(), f.shell));
    v.field("format", check_format(f.format, f.shell));
    v.field("skip_on", check_calendars(Some(&f.skip_on)));
    v.field("only_on", check_calendars(Some(&f.only_on)));
    v.field("env", check_env(f.env.clone()));
    v.field("workdir", check_workdir(f.workdir.as_deref()));
    v.field("run_as", check_user(f.run_as.as_deref()));
    v.field("userdata", check_userdata(Some(f.userdata.clone())));
    let runs_by_itself = f.schedule.is_some() || f.resources.on_inputs;
    v.field("params", crate::params::check(&f.params, runs_by_itself));
    if let (Some(s), Some(e)) = (f.start, f.end) {
        if e <= s {
            v.push(
                "end",
                format!("{} is not after start {}", e.to_rfc3339(), s.to_rfc3339()),
            );
        }
    }
    let counts = [
        ("iterations", f.iterations, 1),
        ("retries", Some(f.retries), 0),
        ("concurrency", Some(f.concurrency), 1),
        ("cpu_weight", f.limits.cpu_weight, 1),
    ];
    for (field, value, min) in counts {
        v.field(field, opt_count(value.map(i64::from), min));
    }
    if f.limits.cpu_weight.is_some_and(|w| w > 10_000) {
        v.push("cpu_weight", "is more than 10000".to_string());
    }
    if let Some(bytes) = f.limits.memory_max {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        v.field("memory_max", parse_size(&Size::Bytes(bytes)));
    }
    let positive = [
        ("ttl", Some(f.ttl)),
        ("maxtime", f.maxtime),
        ("lock_lease", Some(f.resources.lease)),
    ];
    for (field, d) in positive {
        if d.is_some_and(|d| d.is_zero()) {
            v.push(field, "must be more than zero".to_string());
        }
    }
    let durations = [
        ("ttl", Some(f.ttl)),
        ("jitter", Some(f.jitter)),
        ("maxtime", f.maxtime),
        ("retry_backoff", Some(f.retry_backoff)),
        ("keep_logs", f.logs.keep),
        ("compress_logs", f.logs.compress_after),
        ("lock_lease", Some(f.resources.lease)),
        ("lock_wait", Some(f.resources.wait)),
        ("outputs_expire", f.resources.outputs_expire),
        ("max_health_age", f.max_health_age),
        ("warn_after", f.warn_after),
        ("min_duration", f.min_duration),
    ];
    for (field, d) in durations {
        if let Some(d) = d.filter(|d| *d > MAX_DURATION) {
            v.push(
                field,
                format!(
                    "{}s is longer than {}, the longest duration allowed",
                    d.as_secs(),
                    format_duration(MAX_DURATION)
                ),
            );
        }
    }
    if let Some(pool) = &f.target.pool {
        if !is_simple_name(pool) {
            v.push(
                "target",
                format!("pool `{pool}` must be letters, digits, `_`, `-` or `.`, and not empty"),
            );
        }
    }
    if f.resources.on_inputs && f.target.all {
        v.push(
            "on_inputs",
            "a data-triggered job runs once per fresh set of inputs, so its target must be `any` \
             (not `all`)"
                .to_string(),
        );
    }
    v.problems
}

crate::run::text_enum!(
    /// How the guardian runs a job and reads what it prints (the key `format`; the CHECK on
    /// `jobs.format` lists the same labels).
    JobFormat, "job format" {
        /// Sisyphus' own: the command as it is; stdout and stderr lines as they are, and the job
        /// SDK's protocol records on `SISYPHUS_PROTOCOL_FD`.
        Sisyphus = "sisyphus",
        /// An existing Python job written with ll.sisyphus, run unmodified: the guardian appends
        /// [`LL_SISYPHUS_FLAGS`] to its command line, so it logs to stdout and writes no log
        /// files, and reads its log lines (tags, task stack, the result line) as the SDK's
        /// records.
        LlSisyphus = "ll.sisyphus",
    }
);

crate::run::text_enum!(
    /// What a slot of the schedule does when it comes due while the job is at its concurrency
    /// (the key `overlap`; the CHECK on `jobs.overlap` lists the same labels). It governs runs of
    /// the schedule only; runs a person asked for, retries and data-triggered runs wait for a
    /// place as under `queue` (migrations/0016_overlap_backfill.sql).
    Overlap, "overlap policy" {
        /// Wait for a free place within the TTL (Kubernetes' `Allow` with a limit).
        Queue = "queue",
        /// Recorded as `skipped`, yielded to the run that holds the place (`Forbid`).
        Skip = "skip",
        /// One waits; later ones are `skipped` (Temporal's `BUFFER_ONE`).
        BufferOne = "buffer_one",
        /// The running runs of the schedule are terminated ("replaced by run N") and the new
        /// slot starts (`Replace`).
        Replace = "replace",
    }
);

/// The flags the guardian appends to an `ll.sisyphus` job's command line: log lines to stdout
/// only, no log file (and so no `current`/`last_*` links and no log retention of its own). The
/// spellings are ll.sisyphus' own (`Job.argparser`, `misc.FlagAction`: `yes`/`no`).
pub const LL_SISYPHUS_FLAGS: [&str; 3] = ["--log2file=no", "--log2stdout=yes", "--log2stderr=no"];

/// `format` with the rest of the definition: an `ll.sisyphus` job gets flags appended to its
/// argv, which a line of shell could not take.
fn check_format(format: JobFormat, shell: bool) -> Result<(), String> {
    match (format, shell) {
        (JobFormat::LlSisyphus, true) => Err(
            "`ll.sisyphus` jobs run as an argv with ll.sisyphus' logging flags appended, which a \
             line of shell cannot take: write command as an array such as \
             [\"/opt/venv/bin/python\", \"fetch.py\"] and set shell = false"
                .to_string(),
        ),
        _ => Ok(()),
    }
}

/// `skip_on`/`only_on`: calendar names, each once. Whether they exist is the database's to say
/// (`apply` checks them against `sisyphus.calendars`, naming the key and the name).
fn check_calendars(names: Option<&[String]>) -> Result<Vec<String>, String> {
    let names = names.unwrap_or_default();
    for (i, name) in names.iter().enumerate() {
        crate::calendar::check_name(name)?;
        if names[..i].contains(name) {
            return Err(format!("calendar `{name}` is named twice"));
        }
    }
    Ok(names.to_vec())
}

/// What a run's cgroup is limited to, where the host can apply it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// Bytes (`memory.max`).
    pub memory_max: Option<u64>,
    /// 1 to 10000 (`cpu.weight`).
    pub cpu_weight: Option<u32>,
}

/// The resources a job reads and writes, and how it locks them (migrations/0004).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSpec {
    pub inputs: Vec<Template>,
    pub outputs: Vec<Template>,
    pub lease: Duration,
    pub wait: Duration,
    pub outputs_expire: Option<Duration>,
    /// Data trigger: a run when every input has been written since the last successful run.
    pub on_inputs: bool,
}

impl Default for ResourceSpec {
    fn default() -> Self {
        ResourceSpec {
            inputs: Vec::new(),
            outputs: Vec::new(),
            lease: DEFAULT_LOCK_LEASE,
            wait: DEFAULT_LOCK_WAIT,
            outputs_expire: None,
            on_inputs: false,
        }
    }
}

/// Local log file settings: defined with the log files themselves (`sisyphus-logfile`), shared
/// by the guardian and the job SDK.
pub use sisyphus_logfile::{Compression, LogSettings};

/// A definition that was refused, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidJob {
    /// `PROJECT/NAME`, or `#N` (position in the file) when the name itself is missing or bad.
    pub job: String,
    pub problems: Vec<FieldProblem>,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub problem: String,
}

impl InvalidJob {
    fn internal(job: String) -> InvalidJob {
        InvalidJob {
            job,
            problems: vec![FieldProblem {
                field: "(all)",
                problem: "validation incomplete".into(),
            }],
        }
    }

    /// Whether one of the problems is with `field`.
    pub fn names(&self, field: &str) -> bool {
        self.problems.iter().any(|p| p.field == field)
    }
}

impl fmt::Display for InvalidJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {} is invalid: ", self.job)?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "field `{}`: {}", p.field, p.problem)?;
        }
        Ok(())
    }
}

struct Validator {
    problems: Vec<FieldProblem>,
}

impl Validator {
    fn push(&mut self, field: &'static str, problem: String) {
        self.problems.push(FieldProblem { field, problem });
    }

    fn field<T>(&mut self, field: &'static str, result: Result<T, String>) -> Option<T> {
        result.map_err(|p| self.push(field, p)).ok()
    }

    fn required(
        &mut self,
        field: &'static str,
        value: Option<&str>,
        check: fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        match value {
            None => {
                self.push(field, "is required".to_string());
                None
            }
            Some(v) => self.field(field, check(v).map(|()| v.to_string())),
        }
    }
}

/// Letters, digits, `_`, `-` and `.`; not empty; at most 200 characters.
pub fn is_simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A project name: dot-separated simple names (`ACME.FooBar`).
pub fn check_project(p: &str) -> Result<(), String> {
    let ok = is_simple_name(p) && p.split('.').all(|part| !part.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{p}` must be dot-separated names of letters, digits, `_` or `-` (e.g. ACME.FooBar)"
        ))
    }
}

fn check_name(n: &str) -> Result<(), String> {
    if is_simple_name(n) {
        Ok(())
    } else {
        Err(format!(
            "`{n}` must be letters, digits, `_`, `-` or `.` (e.g. Fetch)"
        ))
    }
}

fn check_command(command: Option<&Command>, shell: bool) -> Result<Vec<String>, String> {
    let argv = match (command, shell) {
        (None, _) => return Err("is required".to_string()),
        (Some(Command::Argv(argv)), false) => argv.clone(),
        (Some(Command::Line(line)), true) => vec![line.clone()],
        (Some(Command::Line(line)), false) => {
            return Err(format!(
                "`{line}` is a string, which only runs through a shell: write an argv array such \
                 as [\"echo\", \"hello\"], or set shell = true"
            ))
        }
        (Some(Command::Argv(_)), true) => {
            return Err("with shell = true, write the command as one string of shell".to_string())
        }
    };
    match argv.first() {
        None => Err("is empty; give at least the program to run".to_string()),
        Some(p) if p.trim().is_empty() => Err("the program (first element) is empty".to_string()),
        Some(_) if argv.iter().any(|a| a.contains('\0')) => Err(NUL.to_string()),
        Some(_) => Ok(argv),
    }
}

fn check_env(env: BTreeMap<String, EnvValue>) -> Result<BTreeMap<String, EnvValue>, String> {
    for (k, v) in &env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(format!(
                "variable name `{k}` must be non-empty, without `=` or NUL"
            ));
        }
        match v {
            EnvValue::Plain(text) if text.contains('\0') => {
                return Err(format!("value of `{k}` {NUL}"));
            }
            EnvValue::Secret { secret } if !is_secret_name(secret) => {
                return Err(format!(
                    "value of `{k}`: secret name `{secret}` must be 1 to {MAX_SECRET_NAME} \
                     letters, digits or `_` (e.g. DB_PASSWORD): the guardian reads it from the \
                     file of that name in its --secrets-dir or from SISYPHUS_SECRET_<NAME>"
                ));
            }
            _ => {}
        }
    }
    Ok(env)
}

fn check_workdir(dir: Option<&str>) -> Result<Option<String>, String> {
    match dir {
        Some(d) if d.contains('\0') => Err(NUL.to_string()),
        Some(d) if !d.starts_with('/') => Err(format!("`{d}` must be an absolute path")),
        other => Ok(other.map(str::to_string)),
    }
}

fn check_zone(zone: Option<&str>) -> Result<Tz, String> {
    match zone {
        None => Ok(Tz::UTC),
        Some(z) => z.parse::<Tz>().map_err(|_| {
            format!("unknown time zone `{z}`; use an IANA name such as Europe/Amsterdam")
        }),
    }
}

fn check_user(user: Option<&str>) -> Result<Option<String>, String> {
    match user {
        Some(u) if !is_simple_name(u) => Err(format!("`{u}` is not a user name")),
        other => Ok(other.map(str::to_string)),
    }
}

fn check_userdata(data: Option<serde_json::Value>) -> Result<serde_json::Value, String> {
    match data {
        None => Ok(serde_json::Value::Object(Default::default())),
        Some(v @ serde_json::Value::Object(_)) if holds_nul(&v) => Err(format!(
            "{NUL} (in a key or a string); PostgreSQL's jsonb cannot store it"
        )),
        Some(v @ serde_json::Value::Object(_)) => Ok(v),
        Some(other) => Err(format!("must be a table (JSON object), not {other}")),
    }
}

/// The problem with text holding a NUL byte, which PostgreSQL's `text` and `jsonb` cannot hold.
const NUL: &str = "contains a NUL character";

/// Whether any key or string in a JSON value holds a NUL character.
fn holds_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

fn opt<T>(
    value: Option<&Text>,
    f: impl FnOnce(&Text) -> Result<T, String>,
) -> Result<Option<T>, String> {
    value.map(f).transpose()
}

/// A count between `min` and [`MAX_COUNT`] (what PostgreSQL's `integer` holds).
fn count(value: Option<i64>, default: u32, min: u32) -> Result<u32, String> {
    match value {
        None => Ok(default),
        Some(v) if v < i64::from(min) => Err(format!("{v} is less than {min}")),
        Some(v) if v > i64::from(MAX_COUNT) => Err(format!(
            "{v} is more than {MAX_COUNT} (2^31 - 1), the largest count"
        )),
        Some(v) => u32::try_from(v).map_err(|_| format!("{v} is more than {MAX_COUNT}")),
    }
}

fn opt_count(value: Option<i64>, min: u32) -> Result<Option<u32>, String> {
    value.map(|v| count(Some(v), min, min)).transpose()
}

/// Parses a duration such as `90s`, `5m`, `2h`, `1h30m`; resolution is a microsecond (less is
/// dropped). Refuses negative durations and any longer than [`MAX_DURATION`] (100 years), so
/// nothing wraps: the bound is checked before the value is truncated to microseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("`{text}` is negative"));
    }
    let too_long = || {
        format!(
            "`{text}` is longer than {}, the longest duration allowed",
            format_duration(MAX_DURATION)
        )
    };
    let d = humantime::parse_duration(t).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => too_long(),
        _ => format!("`{text}` is not a duration; write e.g. 90s, 5m, 2h or 1h30m"),
    })?;
    if d > MAX_DURATION {
        return Err(too_long());
    }
    let micros = u64::try_from(d.as_micros()).map_err(|_| too_long())?;
    Ok(Duration::from_micros(micros))
}

fn positive(value: Option<&Text>, default: Duration) -> Result<Duration, String> {
    let Some(Text(text)) = value else {
        return Ok(default);
    };
    let d = parse_duration(text).map_err(|e| {
        if text.trim().starts_with('-') {
            format!("`{text}` must be more than zero")
        } else {
            e
        }
    })?;
    if d.is_zero() {
        return Err(format!("`{text}` must be more than zero"));
    }
    Ok(d)
}

fn non_negative(value: Option<&Text>) -> Result<Duration, String> {
    value.map_or(Ok(Duration::ZERO), |Text(t)| parse_duration(t))
}

/// Parses a time: RFC 3339 with an offset, or a local date-time or date read in `tz`
/// (a local time in a DST gap moves forward past the gap; one in a fold takes its first occurrence).
pub fn parse_time(text: &Text, tz: Tz) -> Result<DateTime<Utc>, String> {
    let t = text.0.trim();
    let bad = || {
        format!("`{t}` is not a time; write RFC 3339 (2026-03-01T07:00:00+01:00), or a local time (2026-03-01T07:00:00) read in the job's time zone")
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(truncate_micros(dt.with_timezone(&Utc)));
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(bad)?;
    let utc = match tz.from_local_datetime(&naive) {
        LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => x.with_timezone(&Utc),
        LocalResult::None => {
            let later = naive + chrono::Duration::hours(1);
            tz.from_local_datetime(&later)
                .earliest()
                .ok_or_else(bad)?
                .with_timezone(&Utc)
        }
    };
    Ok(truncate_micros(utc))
}

fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(toml_text: &str) -> Result<BTreeMap<String, EnvValue>, String> {
        #[derive(Deserialize)]
        struct File {
            env: BTreeMap<String, EnvValue>,
        }
        toml::from_str::<File>(toml_text)
            .map(|f| f.env)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn env_values_are_strings_or_secret_references() {
        let env = env_of(r#"env = { MODE = "fast", TOKEN = { secret = "API_TOKEN" } }"#);
        assert_eq!(
            env,
            Ok(BTreeMap::from([
                ("MODE".to_string(), EnvValue::from("fast")),
                ("TOKEN".to_string(), EnvValue::secret("API_TOKEN")),
            ]))
        );
        // Stored as jsonb: plain values as strings, secrets as {"secret": NAME}; and read back.
        let env = env.unwrap_or_default();
        let json = serde_json::to_value(&env).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"MODE": "fast", "TOKEN": {"secret": "API_TOKEN"}})
        );
        let back: BTreeMap<String, EnvValue> = serde_json::from_value(json).unwrap_or_default();
        assert_eq!(back, env);
    }

    #[test]
    fn a_wrong_env_value_is_named() {
        let err = |text| env_of(text).err().unwrap_or_default();
        assert!(err(r#"env = { T = { secrt = "X" } }"#).contains("unknown key `secrt`"));
        assert!(err(r#"env = { T = {} }"#).contains("needs the key `secret`"));
        assert!(err(r#"env = { T = 5 }"#).contains(r#"a string, or { secret = "NAME" }"#));
        assert!(err(r#"env = { T = { secret = 5 } }"#).contains("expected a string"));
    }

    #[test]
    fn secret_names_are_simple_names() {
        let def = |name: &str| JobDefinition {
            env: Some(BTreeMap::from([(
                "TOKEN".to_string(),
                EnvValue::secret(name),
            )])),
            ..JobDefinition::new("P", "j", ["true"])
        };
        assert!(def("API_token_2").validate().is_ok());
        for bad in ["", "a-b", "../etc/passwd", "a.b", "ü", &"x".repeat(201)] {
            let e = def(bad).validate().err();
            let problem = e.as_ref().and_then(|e| e.problems.first());
            assert!(
                problem.is_some_and(
                    |p| p.field == "env" && p.problem.contains("value of `TOKEN`: secret name")
                ),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn plain_values_under_secret_looking_keys_are_found() {
        assert!(looks_secret("DB_PASSWORD") && looks_secret("api_token"));
        assert!(looks_secret("Client_Secret") && looks_secret("SSH_KEY"));
        assert!(!looks_secret("MODE") && !looks_secret("PATH"));
        let def = JobDefinition {
            env: Some(BTreeMap::from([
                ("DB_PASSWORD".to_string(), EnvValue::from("x")),
                ("API_TOKEN".to_string(), EnvValue::secret("API_TOKEN")),
                ("MODE".to_string(), EnvValue::from("fast")),
            ])),
            ..JobDefinition::new("P", "j", ["true"])
        };
        let spec = def.validate().map_err(|e| e.to_string());
        assert_eq!(
            spec.as_ref().map(|s| s.plain_keys_looking_secret()),
            Ok(vec!["DB_PASSWORD"])
        );
    }
}
