//! `sisyctl cron EXPR`: next fire times, no database needed; `--explain` explains them.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sisyphus_client::schedule::explain::{explain, no_exclusions, Explanation};
use sisyphus_client::{CronExpr, Schedule};

use crate::{output, say, Failure};

/// What `sisyctl cron` was asked.
pub struct Args<'a> {
    pub expression: &'a str,
    pub tz: &'a str,
    pub from: Option<&'a str>,
    pub count: usize,
    pub explain: bool,
}

pub fn run(args: &Args<'_>, json: bool) -> Result<(), Failure> {
    let expression = args.expression;
    let cron = CronExpr::parse(expression)
        .map_err(|e| Failure::usage(anyhow!("invalid cron expression `{expression}`: {e}")))?;
    let zone = parse_zone(args.tz)?;
    let from = match args.from {
        None => Utc::now(),
        Some(f) => DateTime::parse_from_rfc3339(f)
            .map_err(|e| Failure::usage(anyhow!("--from: `{f}` is not an RFC 3339 time: {e}")))?
            .with_timezone(&Utc),
    };
    if args.explain {
        let schedule = Schedule::Cron(vec![cron]);
        return print_explanation(
            &explain(&schedule, zone, from, args.count, &no_exclusions),
            json,
        );
    }
    let times: Vec<String> = cron
        .upcoming(from, zone, args.count)
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

/// `--tz`: an IANA zone name.
fn parse_zone(tz: &str) -> Result<Tz, Failure> {
    tz.parse().map_err(|_| {
        Failure::usage(anyhow!(
            "--tz: unknown time zone `{tz}`; use an IANA name such as Europe/Amsterdam"
        ))
    })
}

/// An explanation as text (escaped line by line: calendar names come from the database) or JSON.
pub fn print_explanation(explanation: &Explanation, json: bool) -> Result<(), Failure> {
    if json {
        return Ok(output::json(explanation)?);
    }
    for line in explanation.to_string().lines() {
        say!("{}", output::escape(line, true))?;
    }
    Ok(())
}
