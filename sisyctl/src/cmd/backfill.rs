//! `sisyctl backfill P/N --from T1 --to T2 [--dry-run] [--max N]` and `--cancel`.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sisyphus_client::backfill::BackfillState;
use sisyphus_client::{Client, JobRef};

use crate::output::{self, opt, time};
use crate::{say, Failure};

/// What `sisyctl backfill` was asked.
pub struct Args {
    pub job: JobRef,
    pub from: String,
    pub to: String,
    pub max: u32,
    pub dry_run: bool,
}

/// Backfills the job's slots in `[from, to)`, or with `--dry-run` lists what it would do.
pub async fn run(client: &Client, args: Args, json: bool) -> Result<(), Failure> {
    let zone = client.job_spec(&args.job).await?.timezone;
    let now = Utc::now();
    let from = at("--from", &args.from, zone, now)?;
    let to = at("--to", &args.to, zone, now)?;
    if from >= to {
        return Err(Failure::usage(anyhow!(
            "--from {} is not before --to {}: the range [from, to) is empty; nothing written",
            from.to_rfc3339(),
            to.to_rfc3339()
        )));
    }
    let done = client
        .backfill(&args.job, from, to, args.max, args.dry_run)
        .await?;
    if json {
        return Ok(output::json(&done)?);
    }
    if args.dry_run {
        let rows: Vec<Vec<String>> = done
            .slots
            .iter()
            .map(|s| {
                vec![
                    time(Some(s.slot)),
                    opt(s.target_host.as_ref()),
                    s.state.to_string(),
                    opt(s.run),
                ]
            })
            .collect();
        output::table(&["SLOT", "HOST", "STATE", "RUN"], &rows)?;
    }
    let count = |state| done.count(state);
    say!(
        "{}: {} slot(s) in [{}, {}): {} new{}, {} waiting, {} active, {} done",
        done.job,
        done.slots.len(),
        from.to_rfc3339(),
        to.to_rfc3339(),
        count(BackfillState::New),
        if args.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        },
        count(BackfillState::Waiting),
        count(BackfillState::Active),
        count(BackfillState::Done)
    )?;
    Ok(())
}

/// Takes back the job's backfill slots that are not runs yet.
pub async fn cancel(client: &Client, job: &JobRef, json: bool) -> Result<(), Failure> {
    let n = client.cancel_backfill(job).await?;
    if json {
        return Ok(output::json(
            &serde_json::json!({ "job": job.to_string(), "cancelled": n }),
        )?);
    }
    say!("{job}: {n} waiting backfill slot(s) taken back")?;
    Ok(())
}

/// A time of `--from`/`--to`: RFC 3339, a local time read in the job's zone (`2026-03-01`,
/// `2026-03-01T06:00`), `now`, or a duration before now (`3d`, `12h`).
fn at(flag: &str, text: &str, zone: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>, Failure> {
    if text.trim() == "now" {
        return Ok(now);
    }
    if let Ok(t) = sisyphus_client::spec::parse_time(&text.into(), zone) {
        return Ok(t);
    }
    let ago = sisyphus_client::spec::parse_duration(text).map_err(|_| {
        Failure::usage(anyhow!(
            "{flag} `{text}` is not a time: write RFC 3339 (2026-03-01T07:00:00Z), a local time \
             in the job's zone {zone} (2026-03-01 or 2026-03-01T07:00), `now`, or a duration \
             before now (3d)"
        ))
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| Failure::usage(anyhow!("{flag} `{text}` reaches back too far")))
}
