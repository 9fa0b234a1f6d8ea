//! `sisyctl notifications [--state S] [--job P/N]`: the outbox — what was sent, what waits for a
//! retry and why, what failed for good; `sisyctl notifications --retry ID...` sends failed ones
//! again.

use anyhow::anyhow;
use sisyphus_client::notifications::OutboxState;
use sisyphus_client::{Client, JobRef};

use crate::output;
use crate::{say, Failure};

pub async fn list(
    client: &Client,
    state: Option<&str>,
    job: Option<&JobRef>,
    limit: i64,
    json: bool,
) -> Result<(), Failure> {
    let state = state
        .map(|s| {
            s.parse::<OutboxState>()
                .map_err(|e| Failure::usage(anyhow!("--state {s}: {e}")))
        })
        .transpose()?;
    let rows = client.notifications(state, job, limit).await?;
    if json {
        return Ok(output::json(&rows)?);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                output::time(Some(n.created_at)),
                output::opt(n.job.clone()),
                output::opt(n.run_id),
                n.event.to_string(),
                n.channel.clone(),
                n.state.to_string(),
                n.attempts.to_string(),
                match n.state {
                    OutboxState::Pending if n.attempts > 0 => format!(
                        "next {}: {}",
                        output::time(Some(n.next_attempt_at)),
                        n.last_error.clone().unwrap_or_default()
                    ),
                    _ => output::opt(n.last_error.clone()),
                },
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "CREATED", "JOB", "RUN", "EVENT", "CHANNEL", "STATE", "TRIES", "ERROR",
        ],
        &table,
    )?;
    Ok(())
}

pub async fn retry(client: &Client, ids: &[i64], json: bool) -> Result<(), Failure> {
    let again = client.retry_notifications(ids).await?;
    if json {
        return Ok(output::json(&again)?);
    }
    for id in ids {
        if again.contains(id) {
            say!("notification {id}: pending again")?;
        } else {
            say!("notification {id}: not failed (or no such notification); left alone")?;
        }
    }
    if again.len() == ids.len() {
        Ok(())
    } else {
        Err(Failure::usage(anyhow!(
            "{} of {} notification(s) were not failed",
            ids.len() - again.len(),
            ids.len()
        )))
    }
}
