//! `sisyctl runs` and `sisyctl run JOB`.

use std::collections::BTreeMap;

use anyhow::anyhow;
use sisyphus_client::{Client, JobRef, RunFilter, RunStatus};

use crate::output::{self, opt, time};
use crate::{say, Failure};

pub async fn list(
    client: &Client,
    job: Option<JobRef>,
    status: Option<RunStatus>,
    limit: i64,
    json: bool,
) -> Result<(), Failure> {
    let mut filter = job.as_ref().map(RunFilter::for_job).unwrap_or_default();
    filter.status = status;
    filter.limit = Some(limit);
    let runs = client.runs(&filter).await?;
    if json {
        return Ok(output::json(&runs)?);
    }
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
