//! The `sisyphus.calendars` table (migrations/0017): global calendars that every person and the
//! scheduler read and only admins change, through `set_calendar` and `remove_calendar` (which
//! check the caller and write the audit log). Also the scheduler's two reads of them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::types::Json;
use sqlx::PgExecutor;

use sisyphus_model::calendar::{Calendar, CalendarFormat, Entry};

const SET: &str = include_str!("../../sql/calendars/set.sql");
const REMOVE: &str = include_str!("../../sql/calendars/remove.sql");
const LIST: &str = include_str!("../../sql/calendars/list.sql");
const SOURCE: &str = include_str!("../../sql/calendars/source.sql");
const VERSION: &str = include_str!("../../sql/scheduler/calendar_version.sql");
const ALL: &str = include_str!("../../sql/scheduler/calendars.sql");

/// A stored calendar as `calendar ls`/`show` read it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CalendarRow {
    pub name: String,
    pub zone: String,
    /// `ics` or `toml`.
    pub format: String,
    pub description: Option<String>,
    pub entries: Json<serde_json::Value>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    /// The jobs (`PROJECT/NAME`) the caller can see whose `skip_on` or `only_on` names it.
    pub used_by: Vec<String>,
}

impl CalendarRow {
    /// The calendar to evaluate; a stored value that does not read back, as text.
    pub fn to_calendar(&self) -> Result<Calendar, String> {
        calendar(
            &self.name,
            &self.zone,
            &self.entries.0,
            self.description.clone(),
        )
    }
}

fn calendar(
    name: &str,
    zone: &str,
    entries: &serde_json::Value,
    description: Option<String>,
) -> Result<Calendar, String> {
    let zone: Tz = zone
        .parse()
        .map_err(|_| format!("calendar `{name}`: unknown time zone `{zone}`"))?;
    let entries: Vec<Entry> = serde_json::from_value(entries.clone())
        .map_err(|e| format!("calendar `{name}`: stored entries do not read back: {e}"))?;
    Ok(Calendar {
        name: name.to_string(),
        zone,
        entries,
        description,
    })
}

/// Sets (creates or replaces) a calendar read from `source`; whether it was new. Admins only
/// ([`crate::Error::Declined`] with SQLSTATE 42501 otherwise).
pub async fn set<'e>(
    db: impl PgExecutor<'e>,
    calendar: &Calendar,
    format: CalendarFormat,
    source: &str,
) -> crate::Result<bool> {
    let entries = serde_json::to_value(&calendar.entries)
        .map_err(|e| crate::Error::BadInput(format!("calendar entries: {e}")))?;
    sqlx::query_scalar(SET)
        .bind(&calendar.name)
        .bind(calendar.zone.name())
        .bind(format.as_str())
        .bind(source)
        .bind(entries)
        .bind(&calendar.description)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Removes a calendar; whether there was one. Refused while a job names it
/// ([`crate::Error::Declined`], SQLSTATE 55000, naming the jobs).
pub async fn remove<'e>(db: impl PgExecutor<'e>, name: &str) -> crate::Result<bool> {
    sqlx::query_scalar(REMOVE)
        .bind(name)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Every calendar (`names`: `None`), or those named, by name.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    names: Option<&[String]>,
) -> crate::Result<Vec<CalendarRow>> {
    sqlx::query_as(LIST)
        .bind(names)
        .fetch_all(db)
        .await
        .map_err(crate::Error::from)
}

/// The file a calendar was set from, as given.
pub async fn source<'e>(db: impl PgExecutor<'e>, name: &str) -> crate::Result<Option<String>> {
    sqlx::query_scalar(SOURCE)
        .bind(name)
        .fetch_optional(db)
        .await
        .map_err(crate::Error::from)
}

// The scheduler's reads.

/// The calendars' version, bumped by every change.
pub async fn version<'e>(db: impl PgExecutor<'e>) -> crate::Result<i64> {
    sqlx::query_scalar(VERSION)
        .fetch_one(db)
        .await
        .map_err(crate::Error::from)
}

/// Every calendar, each as it evaluates or, when its stored values do not read back, why not
/// (the jobs naming it are then marked, not the whole tick).
pub async fn all<'e>(
    db: impl PgExecutor<'e>,
) -> crate::Result<Vec<(String, Result<Arc<Calendar>, String>)>> {
    let rows: Vec<(String, String, Json<serde_json::Value>)> =
        sqlx::query_as(ALL).fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(name, zone, entries)| {
            let calendar = calendar(&name, &zone, &entries.0, None).map(Arc::new);
            (name, calendar)
        })
        .collect())
}
