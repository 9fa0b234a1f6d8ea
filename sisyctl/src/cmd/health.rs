//! `sisyctl health PROJECT/NAME | --all`: ll.sisyphus' health check for jobs of the fleet.
//! Exit 0 when every job asked about is healthy; else 1, with each unhealthy job's reason.

use anyhow::anyhow;
use sisyphus_client::{Client, JobRef};

use crate::output;
use crate::{say, Failure};

pub async fn run(
    client: &Client,
    job: Option<JobRef>,
    all: bool,
    json: bool,
) -> Result<(), Failure> {
    let checked = match (&job, all) {
        (Some(_), true) => {
            return Err(Failure::usage(anyhow!("name a job or use --all, not both")));
        }
        (None, false) => {
            return Err(Failure::usage(anyhow!(
                "name a job (PROJECT/NAME) or use --all"
            )));
        }
        (job, _) => client.health(job.as_ref()).await?,
    };
    if json {
        output::json(&checked)?;
    } else {
        for h in &checked {
            let pause = h
                .pause
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            match &h.reason {
                None => say!("{}: healthy{pause}", h.job)?,
                Some(why) => say!("{}: unhealthy: {why}{pause}", h.job)?,
            }
        }
    }
    let unhealthy = checked.iter().filter(|h| h.reason.is_some()).count();
    if unhealthy == 0 {
        Ok(())
    } else {
        Err(Failure::unhealthy(anyhow!(
            "{unhealthy} of {} job(s) unhealthy",
            checked.len()
        )))
    }
}
