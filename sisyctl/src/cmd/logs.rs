//! `sisyctl logs RUN [--follow] [--tag T] [--tail N] [--limit N] [--raw]`.
//!
//! Every line is printed: the log is read from the database a page at a time (so a run of a
//! million lines needs no more memory than one page), including the guardian's truncation
//! marker and the result line at the end. Text is shown with control characters escaped
//! (tabs stay) unless `--raw`; `--json` prints one JSON object per line.

use std::io::{BufWriter, Write};
use std::time::Duration;

use sisyphus_client::{Client, RunId};

use crate::output::escape;
use crate::Failure;

/// Lines read per query.
const PAGE: u32 = 5_000;

/// How `logs` prints.
pub struct Options {
    pub follow: bool,
    pub tag: Option<String>,
    pub tail: Option<u32>,
    pub limit: Option<u32>,
    pub raw: bool,
    pub json: bool,
}

pub async fn run(client: &Client, run: RunId, options: &Options) -> Result<(), Failure> {
    let tag = options.tag.as_deref();
    // An unknown run is an error, not an empty log.
    let info = client.run(run).await?;
    // Its parameters, on stderr: stdout stays the log itself.
    if !options.json && info.params.as_ref().is_some_and(|p| !p.is_empty()) {
        eprintln!("run {run} params: {}", super::runs::shown_params(&info));
    }
    let mut after = match options.tail {
        Some(n) => client.log_tail_start(run, tag, n).await?.unwrap_or(0),
        None => 0,
    };
    let mut left = options.limit.unwrap_or(u32::MAX);
    while left > 0 {
        // Read the status before the lines, so that lines written just before the end are seen.
        let ended = client.run(run).await?.status.is_final();
        let page = PAGE.min(left);
        let lines = client.logs_page(run, after, tag, page).await?;
        let mut out = BufWriter::new(std::io::stdout().lock());
        for line in &lines {
            if options.json {
                serde_json::to_writer(&mut out, line).map_err(anyhow::Error::from)?;
                writeln!(out)?;
            } else {
                let tags: String = line.tags.iter().map(|t| format!("{{{t}}}")).collect();
                let text = if options.raw {
                    line.text.as_str().into()
                } else {
                    escape(&line.text, true)
                };
                let tags = if options.raw {
                    tags
                } else {
                    escape(&tags, false).into_owned()
                };
                writeln!(
                    out,
                    "[{}] {tags} >> {text}",
                    line.at.format("%Y-%m-%d %H:%M:%S%.3f")
                )?;
            }
            after = line.seq;
        }
        out.flush()?;
        drop(out);
        // At most `page` lines came back, so this cannot underflow.
        left = left.saturating_sub(lines.len() as u32);
        if lines.len() as u32 == page {
            continue; // more may be waiting: read on at once
        }
        if !options.follow || ended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
