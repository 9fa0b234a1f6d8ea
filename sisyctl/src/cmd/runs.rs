//! `sisyctl runs` and `sisyctl run JOB`.

use std::collections::BTreeMap;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use sisyphus_client::{BulkAction, Client, ControlAction, JobRef, RunFilter, RunId, RunStatus};

use crate::output::{self, opt, time};
use crate::{say, Failure};

/// Which runs `sisyctl runs` lists (and acts on).
pub struct Query {
    pub job: Option<JobRef>,
    pub status: Option<RunStatus>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

impl Query {
    fn filter(&self, default_limit: i64) -> RunFilter {
        let mut filter = self
            .job
            .as_ref()
            .map(RunFilter::for_job)
            .unwrap_or_default();
        filter.status = self.status;
        filter.since = self.since;
        filter.limit = Some(self.limit.unwrap_or(default_limit));
        filter
    }
}

/// Most runs one bulk action takes, unless `--limit` says fewer.
const BULK_LIMIT: i64 = 10_000;

pub async fn list(client: &Client, query: Query, json: bool) -> Result<(), Failure> {
    let runs = client.runs(&query.filter(50)).await?;
    if json {
        return Ok(output::json(&runs)?);
    }
    table(&runs)
}

/// `sisyctl runs … --rerun | --kill | --suspend | --resume [--yes]`: lists the runs, asks
/// (unless `--yes`), acts in one transaction and reports per run.
pub async fn bulk(
    client: &Client,
    query: Query,
    action: BulkAction,
    yes: bool,
    json: bool,
) -> Result<(), Failure> {
    let runs = client.runs(&query.filter(BULK_LIMIT)).await?;
    let verb = match action {
        BulkAction::Rerun => "rerun",
        BulkAction::Control(ControlAction::Terminate) => "kill",
        BulkAction::Control(ControlAction::Suspend) => "suspend",
        BulkAction::Control(ControlAction::Resume) => "resume",
    };
    if runs.is_empty() {
        if json {
            return Ok(output::json(&Vec::<serde_json::Value>::new())?);
        }
        say!("no run matches; nothing to {verb}")?;
        return Ok(());
    }
    if !yes {
        if !json {
            table(&runs)?;
        }
        if !confirm(&format!("{verb} these {} run(s)?", runs.len()))? {
            return Err(Failure::usage(anyhow!(
                "nothing done: answer y, or add --yes to {verb} without asking"
            )));
        }
    }
    let ids: Vec<RunId> = runs.iter().map(|r| r.id).collect();
    let done = client.bulk(&ids, action).await?;
    let failed = done.iter().filter(|(_, r)| r.is_err()).count();
    if json {
        let rows: Vec<serde_json::Value> = done
            .iter()
            .map(|(run, r)| match r {
                Ok(answer) => serde_json::json!({ "run": run, "done": answer }),
                Err(why) => serde_json::json!({ "run": run, "refused": why }),
            })
            .collect();
        output::json(&rows)?;
    } else {
        for (run, r) in &done {
            match r {
                Ok(answer) => say!("run {run}: {answer}")?,
                Err(why) => say!("run {run}: not done: {why}")?,
            }
        }
    }
    if failed > 0 {
        return Err(Failure::from(anyhow!(
            "{failed} of {} run(s) could not be {verb}{}",
            done.len(),
            if verb.ends_with('e') { "d" } else { "ed" }
        )));
    }
    Ok(())
}

/// Asks on stderr and reads one line from stdin: true for y or yes.
fn confirm(question: &str) -> Result<bool, Failure> {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn table(runs: &[sisyphus_client::Run]) -> Result<(), Failure> {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.job.clone(),
                r.status.to_string(),
                trigger(r),
                r.attempt.to_string(),
                opt(r.host.as_ref().or(r.target_host.as_ref())),
                time(Some(r.scheduled_for)),
                time(r.finished_at),
                opt(r.exit_code),
                shown_params(r),
                r.summary
                    .clone()
                    .or_else(|| r.error.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "JOB",
            "STATUS",
            "TRIGGER",
            "ATTEMPT",
            "HOST",
            "SCHEDULED",
            "FINISHED",
            "EXIT",
            "PARAMS",
            "SUMMARY",
        ],
        &rows,
    )?;
    Ok(())
}

/// `date=2026-11-30 full=true`, or `-`.
pub fn shown_params(run: &sisyphus_client::Run) -> String {
    match &run.params {
        Some(p) if !p.is_empty() => p
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
        _ => "-".to_string(),
    }
}

/// What made a run: `schedule`, `manual`, `retry`, `data`, or `rerun of N`.
fn trigger(run: &sisyphus_client::Run) -> String {
    match run.rerun_of {
        Some(of) => format!("rerun of {of}"),
        None => run.trigger.to_string(),
    }
}

/// `sisyctl rerun RUN`.
pub async fn rerun(
    client: &Client,
    run: sisyphus_client::RunId,
    json: bool,
) -> Result<(), Failure> {
    let id = client.rerun(run).await?;
    if json {
        return Ok(output::json(
            &serde_json::json!({ "run": id, "rerun_of": run }),
        )?);
    }
    say!("run {id} reruns run {run}: pending")?;
    Ok(())
}

/// `--param`s as a map; a name given twice is refused.
pub fn params(given: Vec<(String, String)>) -> Result<BTreeMap<String, String>, Failure> {
    let mut params = BTreeMap::new();
    for (name, value) in given {
        if params.insert(name.clone(), value).is_some() {
            return Err(Failure::usage(anyhow!("--param {name} is given twice")));
        }
    }
    Ok(params)
}

pub async fn run_now(
    client: &Client,
    job: &JobRef,
    params: &BTreeMap<String, String>,
    json: bool,
) -> Result<(), Failure> {
    let ids = client.run_now_with(job, params).await?;
    if json {
        return Ok(output::json(&ids)?);
    }
    for id in ids {
        say!("run {id} of {job} is pending")?;
    }
    Ok(())
}
