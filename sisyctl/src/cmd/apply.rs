//! `sisyctl apply FILE`: make the database hold a jobs file's definitions.

use anyhow::Context;
use sisyphus_client::{jobsfile, Change, Client};

use crate::{output, Failure};

pub async fn run(client: &Client, file: &str, prune: bool, json: bool) -> Result<(), Failure> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
    let checked = jobsfile::parse_all(&text, file)?;
    let report = client
        .apply_with_defaults(&checked.jobs, &checked.projects, prune)
        .await?;
    if json {
        return Ok(output::json(&report)?);
    }
    let rows: Vec<Vec<String>> = report
        .iter()
        .map(|a| vec![a.job.clone(), format!("{:?}", a.change).to_lowercase()])
        .collect();
    output::table(&["JOB", "CHANGE"], &rows);
    let changed = report
        .iter()
        .filter(|a| a.change != Change::Unchanged)
        .count();
    println!("{changed} of {} job(s) changed", report.len());
    Ok(())
}
