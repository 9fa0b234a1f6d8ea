//! `sisyctl apply FILE`: make the database hold a jobs file's definitions; `--plan` shows what
//! that would change and writes nothing (exit 3 when something would change, 0 when nothing).

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;

use anyhow::anyhow;
use sisyphus_client::jobsfile::{self, Checked};
use sisyphus_client::{Change, Client, Plan, PlannedJob};

use crate::{output, say, Failure};

/// The largest jobs file `apply` reads: far more than any fleet's definitions.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and checks a jobs file, before any connection is made. Refuses (exit 2) what is not a
/// regular file — a directory, a fifo, a device such as /dev/zero — and files over
/// [`MAX_FILE_BYTES`], without reading them; a file that grows while it is read is cut off at
/// the limit and refused too. Warnings (`Checked::warnings`) go to stderr.
pub fn read(file: &str) -> Result<Checked, Failure> {
    let refuse = |why: String| Failure::usage(anyhow!("{file}: {why}"));
    let meta = std::fs::metadata(file).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let kind = meta.file_type();
    let not_regular = if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a fifo")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else if !kind.is_file() {
        Some("not a file")
    } else {
        None
    };
    if let Some(what) = not_regular {
        return Err(refuse(format!(
            "is {what}, not a regular file; give a jobs file (TOML)"
        )));
    }
    let too_big = || {
        refuse(format!(
            "is larger than {} MiB, the largest jobs file apply reads",
            MAX_FILE_BYTES / (1024 * 1024)
        ))
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let checked = jobsfile::parse_all(&text, file)?;
    warn(&checked);
    Ok(checked)
}

/// Says on stderr what the file allows but probably should not (a plain value under an env key
/// that looks secret), naming the job and the key; it is applied all the same. A stderr that
/// cannot be written does not stop the apply.
fn warn(checked: &Checked) {
    let mut err = std::io::stderr().lock();
    for warning in checked.warnings() {
        let text = warning.to_string();
        let _ = writeln!(err, "sisyctl: warning: {}", output::escape(&text, false));
    }
}

pub async fn run(
    client: &Client,
    checked: &Checked,
    prune: bool,
    json: bool,
) -> Result<(), Failure> {
    let report = client
        .apply_with_defaults(&checked.jobs, &checked.projects, prune)
        .await?;
    if json {
        return Ok(output::json(&report)?);
    }
    let rows: Vec<Vec<String>> = report
        .iter()
        .map(|a| vec![a.job.clone(), format!("{:?}", a.change).to_lowercase()])
        .collect();
    output::table(&["JOB", "CHANGE"], &rows)?;
    let changed = report
        .iter()
        .filter(|a| a.change != Change::Unchanged)
        .count();
    say!("{changed} of {} job(s) changed", report.len())?;
    Ok(())
}

/// How many next fire times `apply --plan` shows where a schedule changes.
const PLAN_FIRES: usize = 5;

/// `apply --plan`: what applying would change, writing nothing. Exit 0 when nothing would change,
/// [`CHANGES_PLANNED`](crate::CHANGES_PLANNED) when something would.
pub async fn plan(
    client: &Client,
    checked: &Checked,
    prune: bool,
    json: bool,
) -> Result<(), Failure> {
    let plan = client
        .plan(&checked.jobs, &checked.projects, prune, PLAN_FIRES)
        .await?;
    if json {
        output::json(&plan)?;
    } else {
        print_plan(&plan)?;
    }
    if plan.has_changes() {
        Err(Failure::changes_planned())
    } else {
        Ok(())
    }
}

/// The plan for people: one block per job that changes (`+` added, `~` changed, `-` removed),
/// then a count of each; nothing is written.
fn print_plan(plan: &Plan) -> std::io::Result<()> {
    let show = |text: &str| output::escape(text, true).into_owned();
    let count = |change: Change| plan.jobs.iter().filter(|j| j.change == change).count();
    for job in plan.jobs.iter().filter(|j| j.change != Change::Unchanged) {
        let (mark, what) = match job.change {
            Change::Created => ("+", "added"),
            Change::Updated => ("~", "changed"),
            Change::Removed => ("-", "removed (--prune)"),
            Change::Unchanged => (" ", "unchanged"),
        };
        say!("{mark} {} {what}", show(&job.job))?;
        if let Some(why) = &job.unreadable {
            say!(
                "    (the stored definition does not read back: {}; it is written afresh)",
                show(why)
            )?;
        }
        for key in &job.keys {
            say!(
                "    {}: {} → {}",
                show(&key.key),
                show(key.old.as_deref().unwrap_or("(not set)")),
                show(key.new.as_deref().unwrap_or("(not set)"))
            )?;
        }
        print_fires(job)?;
    }
    for project in &plan.projects {
        let old = project
            .old
            .as_ref()
            .map_or_else(|| "(none)".to_string(), ToString::to_string);
        say!("~ project {} default notify", show(&project.project))?;
        say!(
            "    notify: {} → {}",
            show(&old),
            show(&project.new.to_string())
        )?;
    }
    say!(
        "plan: {} to add, {} to change, {} to remove, {} unchanged{}; nothing was written",
        count(Change::Created),
        count(Change::Updated),
        count(Change::Removed),
        count(Change::Unchanged),
        if plan.projects.is_empty() {
            String::new()
        } else {
            format!(", {} project default(s) to change", plan.projects.len())
        }
    )
}

/// The next fire times before and after, where the schedule changes.
fn print_fires(job: &PlannedJob) -> std::io::Result<()> {
    if !job.schedule_changes {
        return Ok(());
    }
    let list = |times: &[chrono::DateTime<chrono::Utc>]| {
        if times.is_empty() {
            "none".to_string()
        } else {
            times
                .iter()
                .map(|t| output::time(Some(*t)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    if job.change != Change::Created {
        say!("    next fire times now:   {}", list(&job.fires_before))?;
    }
    if job.change != Change::Removed {
        say!("    next fire times after: {}", list(&job.fires_after))?;
    }
    Ok(())
}
