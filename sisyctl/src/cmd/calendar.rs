//! `sisyctl calendar set | ls | show | rm`: calendars that jobs' `skip_on` and `only_on` name.
//! Calendars are global (shared by every project): everyone reads them, admins change them.

use anyhow::anyhow;
use chrono_tz::Tz;
use clap::Subcommand;
use sisyphus_client::calendar::{Calendar, CalendarFormat, Entry};
use sisyphus_client::Client;

use crate::output::{self, time};
use crate::{say, Failure};

#[derive(Subcommand)]
pub enum CalendarCommand {
    /// Create or replace a calendar from an iCalendar (.ics) file or a TOML list of days and
    /// ranges (any other name). Admins only; slots already materialised keep their runs.
    Set {
        name: String,
        file: String,
        /// The calendar's zone (IANA), over the file's own (`zone =`, `X-WR-TIMEZONE`).
        #[arg(long)]
        zone: Option<String>,
    },
    /// List calendars.
    Ls,
    /// Show a calendar: zone, entries, the jobs that name it, and the file it was set from.
    Show { name: String },
    /// Remove a calendar (admins only); refused while a job names it.
    Rm { name: String },
}

pub async fn run(
    client: impl std::future::Future<Output = Result<Client, Failure>>,
    command: CalendarCommand,
    json: bool,
) -> Result<(), Failure> {
    match command {
        CalendarCommand::Set { name, file, zone } => {
            let (calendar, format, source) = read(&name, &file, zone.as_deref())?;
            let created = client
                .await?
                .set_calendar(&calendar, format, &source)
                .await?;
            let entries = calendar.entries.len();
            if json {
                return Ok(output::json(&serde_json::json!({
                    "calendar": name, "created": created, "entries": entries,
                }))?);
            }
            let verb = if created { "created" } else { "replaced" };
            say!(
                "calendar {name} {verb}: {entries} entr{} in {}",
                if entries == 1 { "y" } else { "ies" },
                calendar.zone.name()
            )?;
            Ok(())
        }
        CalendarCommand::Ls => {
            let rows = client.await?.calendars().await?;
            if json {
                let list: Vec<_> = rows.iter().map(row_json).collect();
                return Ok(output::json(&list)?);
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.zone.clone(),
                        r.format.clone(),
                        entry_count(r).to_string(),
                        used_by(&r.used_by),
                        format!("{} {}", time(Some(r.updated_at)), r.updated_by),
                    ]
                })
                .collect();
            Ok(output::table(
                &["NAME", "ZONE", "FORMAT", "ENTRIES", "USED BY", "UPDATED"],
                &table,
            )?)
        }
        CalendarCommand::Show { name } => {
            let (row, source) = client.await?.calendar(&name).await?;
            if json {
                let mut value = row_json(&row);
                value["entries"] = row.entries.0.clone();
                value["source"] = source.into();
                return Ok(output::json(&value)?);
            }
            let calendar = row.to_calendar().map_err(|e| anyhow!(e))?;
            let mut lines = vec![
                ("calendar", row.name.clone()),
                ("zone", row.zone.clone()),
                ("format", row.format.clone()),
                (
                    "description",
                    row.description.clone().unwrap_or_else(|| "-".into()),
                ),
                ("used by", used_by(&row.used_by)),
                (
                    "updated",
                    format!("{} by {}", time(Some(row.updated_at)), row.updated_by),
                ),
            ];
            for entry in &calendar.entries {
                lines.push(("entry", describe(entry)));
            }
            output::fields(&lines)?;
            say!("")?;
            for line in source.lines() {
                say!("{}", output::escape(line, true))?;
            }
            Ok(())
        }
        CalendarCommand::Rm { name } => {
            let removed = client.await?.remove_calendar(&name).await?;
            if json {
                return Ok(output::json(
                    &serde_json::json!({ "calendar": name, "removed": removed }),
                )?);
            }
            if !removed {
                return Err(Failure::usage(anyhow!("calendar `{name}` does not exist")));
            }
            say!("calendar {name} removed")?;
            Ok(())
        }
    }
}

/// Reads and parses a calendar file: bad input (exit 2) names the file and the line.
pub fn read(
    name: &str,
    file: &str,
    zone: Option<&str>,
) -> Result<(Calendar, CalendarFormat, String), Failure> {
    let zone: Option<Tz> = zone
        .map(|z| {
            z.parse().map_err(|_| {
                Failure::usage(anyhow!(
                    "--zone: unknown time zone `{z}`; use an IANA name such as Europe/Amsterdam"
                ))
            })
        })
        .transpose()?;
    let source = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(anyhow!("cannot read calendar file {file}: {e}")))?;
    let format = CalendarFormat::of_path(file);
    let calendar = Calendar::parse(name, format, &source, zone)
        .map_err(|e| Failure::usage(anyhow!("{file}: {e}")))?;
    Ok((calendar, format, source))
}

fn entry_count(row: &sisyphus_client::db::calendars::CalendarRow) -> usize {
    row.entries.0.as_array().map_or(0, Vec::len)
}

fn used_by(jobs: &[String]) -> String {
    if jobs.is_empty() {
        "-".to_string()
    } else {
        jobs.join(", ")
    }
}

fn row_json(row: &sisyphus_client::db::calendars::CalendarRow) -> serde_json::Value {
    serde_json::json!({
        "name": row.name,
        "zone": row.zone,
        "format": row.format,
        "description": row.description,
        "entries": entry_count(row),
        "used_by": row.used_by,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    })
}

/// One entry in words.
fn describe(entry: &Entry) -> String {
    match entry {
        Entry::Days { first, last } if first == last => format!("{first}"),
        Entry::Days { first, last } => format!("{first} to {last}"),
        Entry::Yearly {
            month,
            day,
            first_year,
            last_year,
        } => {
            let from = if *first_year == i32::MIN {
                String::new()
            } else {
                format!(" from {first_year}")
            };
            let to = last_year.map_or(String::new(), |l| format!(" to {l}"));
            format!("every year on {month:02}-{day:02}{from}{to}")
        }
        Entry::Weekly { days, first, last } => {
            let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
            let from = first.map_or(String::new(), |f| format!(" from {f}"));
            let to = last.map_or(String::new(), |l| format!(" to {l}"));
            format!("every {}{from}{to}", days.join(", "))
        }
        Entry::Span { from, to } => format!("{} to {} (UTC)", from.to_rfc3339(), to.to_rfc3339()),
    }
}
