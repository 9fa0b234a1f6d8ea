//! `sisyctl resources`, `sisyctl lock`, `sisyctl graph`.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use sisyphus_client::{Client, JobRef, RunId};

use crate::output::{self, opt, time};
use crate::{say, Failure};

pub async fn list(client: &Client, prefix: &str, json: bool) -> Result<(), Failure> {
    let rows = client.resources(prefix).await?;
    if json {
        return Ok(output::json(&rows)?);
    }
    let now = Utc::now();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let age = r.written_at.map(|w| {
                sisyphus_client::schedule::format_duration((now - w).to_std().unwrap_or_default())
            });
            let state = match (r.written_at, r.available) {
                (None, _) => "never written",
                (Some(_), false) => "expired",
                (Some(_), true) => "available",
            };
            let locks = match (&r.write_holder, r.readers) {
                (Some(w), _) => format!("written by {w}"),
                (None, 0) => "-".to_string(),
                (None, n) => format!("{n} reader(s)"),
            };
            vec![
                r.name.clone(),
                state.to_string(),
                opt(r.writer.as_ref()),
                opt(age),
                time(r.expires_at),
                locks,
            ]
        })
        .collect();
    output::table(
        &["RESOURCE", "STATE", "WRITER", "AGE", "EXPIRES", "LOCKS"],
        &rows,
    )?;
    Ok(())
}

pub async fn lock(
    client: &Client,
    run: RunId,
    inputs: &[String],
    outputs: &[String],
    wait: Duration,
    json: bool,
) -> Result<(), Failure> {
    client.add_run_resources(run, inputs, outputs, wait).await?;
    if json {
        return Ok(output::json(
            &serde_json::json!({ "run": run, "locked": true }),
        )?);
    }
    say!("run {run}: resource locks taken")?;
    Ok(())
}

pub async fn graph(client: &Client, job: Option<&JobRef>) -> Result<(), Failure> {
    let dot = client.graph(job).await?;
    std::io::stdout().lock().write_all(dot.as_bytes())?;
    Ok(())
}
