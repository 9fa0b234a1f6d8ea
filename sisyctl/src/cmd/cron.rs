//! `sisyctl cron EXPR`: next fire times, no database needed.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sisyphus_client::CronExpr;

use crate::{output, say, Failure};

pub fn run(
    expression: &str,
    tz: &str,
    from: Option<&str>,
    count: usize,
    json: bool,
) -> Result<(), Failure> {
    let cron = CronExpr::parse(expression)
        .map_err(|e| Failure::usage(anyhow!("invalid cron expression `{expression}`: {e}")))?;
    let zone: Tz = tz.parse().map_err(|_| {
        Failure::usage(anyhow!(
            "--tz: unknown time zone `{tz}`; use an IANA name such as Europe/Amsterdam"
        ))
    })?;
    let from = match from {
        None => Utc::now(),
        Some(f) => DateTime::parse_from_rfc3339(f)
            .map_err(|e| Failure::usage(anyhow!("--from: `{f}` is not an RFC 3339 time: {e}")))?
            .with_timezone(&Utc),
    };
    let times: Vec<String> = cron
        .upcoming(from, zone, count)
        .into_iter()
        .map(|t| t.with_timezone(&zone).to_rfc3339())
        .collect();
    if json {
        output::json(&times)?;
    } else {
        for t in &times {
            say!("{t}")?;
        }
    }
    Ok(())
}
