//! `sisyctl logs RUN [--follow] [--tag T]`.

use std::time::Duration;

use sisyphus_client::{Client, RunId};

use crate::Failure;

pub async fn run(
    client: &Client,
    run: RunId,
    follow: bool,
    tag: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let mut after = 0;
    loop {
        // Read the status before the lines, so that lines written just before the end are seen.
        let ended = client.run(run).await?.status.is_final();
        let lines = client.logs(run, after, tag).await?;
        for line in &lines {
            if json {
                println!(
                    "{}",
                    serde_json::to_string(line).map_err(anyhow::Error::from)?
                );
            } else {
                let tags: String = line.tags.iter().map(|t| format!("{{{t}}}")).collect();
                println!(
                    "[{}] {tags} >> {}",
                    line.at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    line.text
                );
            }
            after = line.seq;
        }
        if !follow || (ended && lines.is_empty()) {
            break;
        }
        if lines.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}
