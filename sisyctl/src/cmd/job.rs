//! `sisyctl job ls | show | pause | resume | rm | next | explain`.

use sisyphus_client::schedule::explain::{explain_job, no_exclusions};
use sisyphus_client::{Client, JobSpec, RunFilter, RunId};

use crate::output::{self, opt, time};
use crate::{say, Failure, JobCommand};

pub async fn run(client: &Client, command: JobCommand, json: bool) -> Result<(), Failure> {
    match command {
        JobCommand::Ls { project } => ls(client, project.as_deref(), json).await,
        JobCommand::Show { job } => {
            let status = client.job_status(&job).await?;
            // A definition changed by hand in SQL may not read back (an absurd interval): the
            // job is still shown, with what is wrong with it, instead of failing.
            let spec = match client.job_spec(&job).await {
                Ok(spec) => Ok(spec),
                Err(sisyphus_client::Error::Refused(why)) => Err(why),
                Err(e) => return Err(e.into()),
            };
            let durations = client.durations(&job, DURATION_HISTORY).await?;
            let reruns = recent_reruns(client, &job).await?;
            if json {
                let mut value = serde_json::to_value(&status)?;
                value["recent_reruns"] = serde_json::to_value(&reruns)?;
                match &spec {
                    Ok(spec) => value["definition"] = spec.definition_json(),
                    Err(why) => value["definition_error"] = why.clone().into(),
                }
                value["durations_secs"] = durations.iter().map(|d| d.as_secs_f64()).collect();
                return Ok(output::json(&value)?);
            }
            match &spec {
                Ok(spec) => show(spec, &status, &durations, &reruns)?,
                Err(why) => show_unreadable(why, &status)?,
            }
            Ok(())
        }
        JobCommand::Pause { job, until, reason } => {
            let changed = client.pause_with(&job, reason.as_deref(), until).await?;
            report(
                json,
                changed,
                &format!("{job} paused"),
                &format!("{job} was paused already"),
            )
        }
        JobCommand::Resume { job } => {
            let changed = client.resume(&job).await?;
            report(
                json,
                changed,
                &format!("{job} resumed"),
                &format!("{job} was not paused"),
            )
        }
        JobCommand::Rm { job } => {
            let runs = client.remove(&job).await?;
            if json {
                return Ok(output::json(
                    &serde_json::json!({ "removed": job.to_string(), "runs": runs }),
                )?);
            }
            say!("{job} removed, with {runs} run(s)")?;
            Ok(())
        }
        JobCommand::Explain { job, count } => {
            // `count` is at most MAX_COUNT (clap checks), so it fits.
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            let spec = client.job_spec(&job).await?;
            let fires = client.next_fire_times(&job, count).await?;
            // The window starts just before the first slot shown (transitions before it move
            // none of them), or now when there is none.
            let from = fires.first().map_or_else(chrono::Utc::now, |first| {
                *first - chrono::Duration::seconds(1)
            });
            let explanation = if spec.skip_on.is_empty() && spec.only_on.is_empty() {
                explain_job(&spec, from, &fires, &no_exclusions)
            } else {
                // The fire times the job's calendars exclude are marked with the calendar.
                let set = client
                    .calendar_set(&spec.skip_on, &spec.only_on, "")
                    .await?;
                explain_job(&spec, from, &fires, &|t| set.excluding_calendar(t))
            };
            crate::cmd::cron::print_explanation(&explanation, json)
        }
        JobCommand::Next { job, count } => {
            // `count` is at most MAX_COUNT (clap checks), so it fits.
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            let slots = client.upcoming_slots(&job, count).await?;
            let spec = client.job_spec(&job).await?;
            let with_calendars = !spec.skip_on.is_empty() || !spec.only_on.is_empty();
            let local =
                |t: &chrono::DateTime<chrono::Utc>| t.with_timezone(&spec.timezone).to_rfc3339();
            if json && with_calendars {
                // Each slot with the calendar that skips it, if one does.
                return Ok(output::json(&slots)?);
            }
            if json {
                let shown: Vec<String> = slots.iter().map(|s| local(&s.at)).collect();
                return Ok(output::json(&shown)?);
            }
            if slots.is_empty() {
                say!("{job} has no upcoming slot")?;
            }
            for s in &slots {
                match &s.skipped {
                    None => say!("{}", local(&s.at))?,
                    Some(why) => say!("{}  skipped: {why}", local(&s.at))?,
                }
            }
            Ok(())
        }
    }
}

pub(crate) fn report(json: bool, changed: bool, yes: &str, no: &str) -> Result<(), Failure> {
    if json {
        output::json(&serde_json::json!({ "changed": changed }))?;
    } else {
        say!("{}", if changed { yes } else { no })?;
    }
    Ok(())
}

async fn ls(client: &Client, project: Option<&str>, json: bool) -> Result<(), Failure> {
    let jobs = client.jobs(project).await?;
    if json {
        return Ok(output::json(&jobs)?);
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                format!("{}/{}", j.project, j.name),
                j.schedule.clone(),
                j.timezone.clone(),
                time(j.next_due),
                opt(j.last_status.as_ref()),
                time(j.last_finished_at),
                j.active_runs.to_string(),
                // `scheduler-error!`: the scheduler leaves the job alone (`job show` says why).
                if j.scheduler_error.is_some() {
                    format!("{}!", j.health)
                } else {
                    j.health.to_string()
                },
                j.pause
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "JOB", "SCHEDULE", "ZONE", "NEXT DUE", "LAST", "FINISHED", "ACTIVE", "HEALTH", "NOTE",
        ],
        &rows,
    )?;
    Ok(())
}

/// How many past durations `job show` prints.
const DURATION_HISTORY: i64 = 20;

/// `last 20: 1.2s 1.1s …; p50 1.2s, p95 1.5s`, newest first.
fn duration_history(durations: &[std::time::Duration]) -> String {
    if durations.is_empty() {
        return "-".into();
    }
    let secs = |d: &std::time::Duration| format!("{:.2}s", d.as_secs_f64());
    let mut sorted = durations.to_vec();
    sorted.sort();
    let at = |q: f64| &sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    format!(
        "last {}: {}; p50 {}, p95 {}",
        durations.len(),
        durations.iter().map(secs).collect::<Vec<_>>().join(" "),
        secs(at(0.5)),
        secs(at(0.95))
    )
}

/// How many of a job's newest runs `job show` looks through for reruns.
const RERUN_HISTORY: i64 = 50;

/// (rerun, the run it repeats) among the job's newest runs, newest first.
async fn recent_reruns(
    client: &Client,
    job: &sisyphus_client::JobRef,
) -> Result<Vec<(RunId, RunId)>, Failure> {
    let mut filter = RunFilter::for_job(job);
    filter.limit = Some(RERUN_HISTORY);
    let runs = match client.runs(&filter).await {
        Ok(runs) => runs,
        Err(sisyphus_client::Error::NoSuchJob(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(runs
        .iter()
        .filter_map(|r| r.rerun_of.map(|of| (r.id, of)))
        .collect())
}

fn show(
    spec: &JobSpec,
    status: &sisyphus_client::JobStatus,
    durations: &[std::time::Duration],
    reruns: &[(RunId, RunId)],
) -> std::io::Result<()> {
    let d = |x: std::time::Duration| sisyphus_client::schedule::format_duration(x);
    let mut lines = vec![
        ("job", spec.job.to_string()),
        (
            "command",
            format!(
                "{:?}{}",
                spec.command,
                if spec.shell { " (shell)" } else { "" }
            ),
        ),
        ("format", spec.format.to_string()),
        ("schedule", status.schedule.clone()),
        ("timezone", spec.timezone.name().to_string()),
        ("skip on", calendars(&spec.skip_on)),
        ("only on", calendars(&spec.only_on)),
        (
            "window",
            format!("{} .. {}", time(spec.start), time(spec.end)),
        ),
        ("iterations", opt(spec.iterations)),
        ("ttl", d(spec.ttl)),
        ("catchup", spec.catchup.to_string()),
        ("jitter", d(spec.jitter)),
        ("maxtime", opt(spec.maxtime.map(d))),
        (
            "retries",
            format!("{} (backoff {})", spec.retries, d(spec.retry_backoff)),
        ),
        ("concurrency", spec.concurrency.to_string()),
        ("overlap", spec.overlap.to_string()),
        ("target", spec.target.to_string()),
        ("workdir", opt(spec.workdir.as_ref())),
        ("env", env_names(spec)),
        ("paused", spec.paused.to_string()),
        ("inputs", names(&spec.resources.inputs)),
        ("outputs", names(&spec.resources.outputs)),
        (
            "locks",
            format!(
                "lease {}, wait {}, outputs expire {}",
                d(spec.resources.lease),
                d(spec.resources.wait),
                opt(spec.resources.outputs_expire.map(d))
            ),
        ),
        ("on inputs", spec.resources.on_inputs.to_string()),
    ];
    lines.extend(status_fields(status));
    lines.extend([
        ("max age", opt(spec.max_health_age.map(d))),
        ("warn after", opt(spec.warn_after.map(d))),
        ("min duration", opt(spec.min_duration.map(d))),
        (
            "memory max",
            opt(spec.limits.memory_max.map(|b| format!("{b} bytes"))),
        ),
        ("cpu weight", opt(spec.limits.cpu_weight)),
        ("notify", notify_rules(spec.notify.as_deref())),
        ("durations", duration_history(durations)),
        (
            "reruns",
            if reruns.is_empty() {
                "-".to_string()
            } else {
                reruns
                    .iter()
                    .map(|(run, of)| format!("run {run} reruns {of}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ]);
    output::fields(&lines)
}

/// Calendar names, or `-`.
fn calendars(names: &[String]) -> String {
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join(", ")
    }
}

/// What `job show` says of a job's state, whether its definition reads or not.
fn status_fields(status: &sisyphus_client::JobStatus) -> [(&'static str, String); 7] {
    [
        (
            "pause",
            status
                .pause
                .as_ref()
                .map_or_else(|| "-".to_string(), ToString::to_string),
        ),
        ("next due", time(status.next_due)),
        ("active runs", status.active_runs.to_string()),
        (
            "last run",
            format!(
                "{} {} {}",
                opt(status.last_run_id),
                opt(status.last_status.as_ref()),
                time(status.last_finished_at)
            ),
        ),
        ("health", status.health.to_string()),
        ("sched error", scheduler_error(status)),
        (
            "healthy",
            match &status.health_reason {
                None => "yes".to_string(),
                Some(why) => format!("no: {why}"),
            },
        ),
    ]
}

/// `-`, or the scheduler's error and when it was recorded.
fn scheduler_error(status: &sisyphus_client::JobStatus) -> String {
    match &status.scheduler_error {
        None => "-".to_string(),
        Some(e) => format!("{e} (since {})", time(status.scheduler_error_at)),
    }
}

/// A job whose stored definition does not read back: its status, and what is wrong.
fn show_unreadable(why: &str, status: &sisyphus_client::JobStatus) -> std::io::Result<()> {
    let mut lines = vec![
        ("job", format!("{}/{}", status.project, status.name)),
        ("definition", format!("unreadable: {why}")),
        ("schedule", status.schedule.clone()),
        ("timezone", status.timezone.clone()),
        ("paused", status.paused.to_string()),
    ];
    lines.extend(status_fields(status));
    output::fields(&lines)
}

/// `MODE, TOKEN=secret:API_TOKEN`: every key, and for a secret the reference (its value is not
/// in the database, and plain values are not shown either).
fn env_names(spec: &JobSpec) -> String {
    if spec.env.is_empty() {
        return "-".into();
    }
    spec.env
        .iter()
        .map(|(k, v)| match v.secret_name() {
            Some(name) => format!("{k}=secret:{name}"),
            None => k.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ops-mail (failed, timeout)  chat (tagged)`, or where the rules come from.
fn notify_rules(rules: Option<&[sisyphus_client::notifications::Rule]>) -> String {
    match rules {
        None => "the project's defaults".to_string(),
        Some([]) => "nobody".to_string(),
        Some(rules) => rules
            .iter()
            .map(|r| {
                let on: Vec<&str> = r.on.iter().map(|e| e.as_str()).collect();
                format!("{} ({})", r.channel, on.join(", "))
            })
            .collect::<Vec<_>>()
            .join("  "),
    }
}

fn names(list: &[sisyphus_client::resources::Template]) -> String {
    if list.is_empty() {
        return "-".into();
    }
    list.iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
