//! `sisyctl cron EXPR`: next fire times, no database needed — but for `--calendar`/`--only-on`,
//! which mark the times those calendars exclude; `--explain` explains them (in words, local and
//! UTC, DST transitions and calendar exclusions with the rule or calendar behind each).

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sisyphus_client::calendars::upcoming;
use sisyphus_client::schedule::explain::{explain, no_exclusions, Explanation};
use sisyphus_client::{Client, CronExpr, Schedule};

use crate::{output, say, Failure};

/// What `sisyctl cron` was asked.
pub struct Args<'a> {
    pub expression: &'a str,
    pub tz: &'a str,
    pub from: Option<&'a str>,
    pub count: usize,
    pub json: bool,
    pub explain: bool,
}

/// The expression, zone and start, checked (exit 2 naming what is wrong).
fn parse(args: &Args) -> Result<(CronExpr, Tz, DateTime<Utc>), Failure> {
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
    Ok((cron, zone, from))
}

pub fn run(args: &Args) -> Result<(), Failure> {
    let (cron, zone, from) = parse(args)?;
    if args.explain {
        let schedule = Schedule::Cron(vec![cron]);
        return print_explanation(
            &explain(&schedule, zone, from, args.count, &no_exclusions),
            args.json,
        );
    }
    let times: Vec<String> = cron
        .upcoming(from, zone, args.count)
        .into_iter()
        .map(|t| t.with_timezone(&zone).to_rfc3339())
        .collect();
    if args.json {
        output::json(&times)?;
    } else {
        for t in &times {
            say!("{t}")?;
        }
    }
    Ok(())
}

/// The next fire times, each marked with the calendar that excludes it (`skipped`): the slots
/// a job with these `skip_on` (`--calendar`) and `only_on` calendars would record as skipped.
pub async fn run_with_calendars(
    args: &Args<'_>,
    client: &Client,
    skip_on: &[String],
    only_on: &[String],
) -> Result<(), Failure> {
    let (cron, zone, from) = parse(args)?;
    let set = client
        .calendar_set(skip_on, only_on, "")
        .await
        .map_err(|e| {
            let e = e
                .to_string()
                .replace("skip_on:", "--calendar:")
                .replace("only_on:", "--only-on:");
            Failure::usage(anyhow!(e))
        })?;
    if args.explain {
        let schedule = Schedule::Cron(vec![cron]);
        let excluded = |t| set.excluding_calendar(t);
        return print_explanation(
            &explain(&schedule, zone, from, args.count, &excluded),
            args.json,
        );
    }
    let slots: Vec<_> = cron
        .upcoming(from, zone, args.count)
        .into_iter()
        .map(|t| upcoming(&set, t))
        .collect();
    if args.json {
        return Ok(output::json(&slots)?);
    }
    for s in &slots {
        let at = s.at.with_timezone(&zone).to_rfc3339();
        match &s.skipped {
            None => say!("{at}")?,
            Some(why) => say!("{at}  skipped: {why}")?,
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
