//! `sisyctl kill | suspend | resume RUN`, `sisyctl hosts`, `sisyctl drain HOST`.

use sisyphus_client::{Client, ControlAction, RunId};

use crate::output::{self, opt, time};
use crate::{say, Failure};

pub async fn run(
    client: &Client,
    run: RunId,
    action: ControlAction,
    json: bool,
) -> Result<(), Failure> {
    let result = client.control(run, action).await?;
    if json {
        return Ok(output::json(
            &serde_json::json!({ "run": run, "result": result }),
        )?);
    }
    match result.as_str() {
        "cancelled" => say!("run {run} had not started; it is cancelled")?,
        _ => say!("run {run}: {action:?} requested", action = action)?,
    }
    Ok(())
}

pub async fn hosts(client: &Client, json: bool) -> Result<(), Failure> {
    let hosts = client.hosts().await?;
    if json {
        return Ok(output::json(&hosts)?);
    }
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                h.pools.join(","),
                format!("{}/{}", h.running, h.capacity),
                format!("{:.0}s", h.heartbeat_age),
                if !h.live {
                    "dead"
                } else if h.draining {
                    "draining"
                } else {
                    "live"
                }
                .to_string(),
                opt(h.pid),
                h.isolation.to_string(),
                time(Some(h.started_at)),
            ]
        })
        .collect();
    output::table(
        &[
            "HOST",
            "POOLS",
            "RUNNING",
            "HEARTBEAT",
            "STATE",
            "PID",
            "ISOLATION",
            "STARTED",
        ],
        &rows,
    )?;
    Ok(())
}

pub async fn drain(client: &Client, host: &str, drain: bool, json: bool) -> Result<(), Failure> {
    client.drain(host, drain).await?;
    if json {
        return Ok(output::json(
            &serde_json::json!({ "host": host, "draining": drain }),
        )?);
    }
    if drain {
        say!("{host} takes no new runs; its running runs go on")?;
    } else {
        say!("{host} takes new runs again")?;
    }
    Ok(())
}
