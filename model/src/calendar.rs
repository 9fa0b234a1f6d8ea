//! Calendars: named sets of days or time ranges in a zone, which exclude a job's slots
//! (`skip_on`) or are the only times its slots may run (`only_on`).
//!
//! A [`Calendar`] is read from an iCalendar file ([`Calendar::from_ics`]) or a TOML list of
//! dates and ranges ([`Calendar::from_toml`]) into [`Entry`]s, the form stored in
//! `sisyphus.calendars.entries` and read back by the scheduler, so it never parses a file.
//! Whole days are evaluated on the calendar's own wall clock: a day is every instant whose local
//! date in the calendar's zone is that day (23 or 25 hours on a DST day), whatever the zone of
//! the job that uses it. Timed ranges are instants (converted when the file is read).
//!
//! A job's calendars together are a [`CalendarSet`]: a slot is excluded when a `skip_on`
//! calendar contains it, or when `only_on` calendars are given and none contains it;
//! [`CalendarSet::excluded_by`] names the calendar. [`CalendarSet::next_slot`] finds the next
//! slot that is not excluded, jumping over excluded stretches (not slot by slot), which is what
//! `job next`, `cron --calendar` and the "excludes every slot of the next 5 years" check use.
//!
//! What is read from an `.ics` file (parsed with the `icalendar` crate's parser): each `VEVENT`
//! that is not `STATUS:CANCELLED`, with `DTSTART` as a date (`VALUE=DATE`, whole days; `DTEND`
//! exclusive, default one day) or a date-time (UTC with `Z`, `TZID=` an IANA zone, or floating:
//! the calendar's zone; `DTEND` or `DURATION` required), and `RRULE` with `FREQ=YEARLY` (fixed
//! date holidays) or `FREQ=WEEKLY` (`BYDAY`) on one-day all-day events, `INTERVAL=1`, with
//! `UNTIL` or `COUNT`. Anything else that changes which times an event covers (other `FREQ`s,
//! `BYxxx` parts that select other days, `RDATE`, `EXDATE`, `EXRULE`, recurring timed events,
//! `TZID`s that are not IANA names) is refused naming the line, never silently ignored.

use std::fmt;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;
use crate::spec::is_simple_name;

/// How far ahead a job's calendars must leave at least one slot (else `apply` refuses the job).
pub const HORIZON_YEARS: i64 = 5;

/// The longest calendar file accepted (1 MiB).
pub const MAX_SOURCE: usize = 1 << 20;

/// The most entries one calendar may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// A named set of days and time ranges in a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub name: String,
    /// Whole days are days of this zone's wall clock.
    pub zone: Tz,
    pub entries: Vec<Entry>,
    pub description: Option<String>,
}

/// One part of a calendar, as stored (`calendars.entries`, JSON tagged by `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    /// Whole local days, `first` to `last`, both included.
    Days { first: NaiveDate, last: NaiveDate },
    /// The same date every year (a fixed-date holiday), from `first_year` on, up to `last_year`
    /// (included) if given. February 29 falls only in leap years.
    Yearly {
        month: u32,
        day: u32,
        first_year: i32,
        last_year: Option<i32>,
    },
    /// Whole local days of the week, from `first` on and up to `last` (included) where given.
    Weekly {
        days: Vec<Weekday>,
        first: Option<NaiveDate>,
        last: Option<NaiveDate>,
    },
    /// The instants from `from` (included) to `to` (excluded).
    Span {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// A calendar file that could not be read: the line (1-based, of the file as given) where it is
/// known, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CalendarError {
    pub line: Option<usize>,
    pub problem: String,
}

impl fmt::Display for CalendarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "line {n}: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

fn problem(line: Option<usize>, text: impl Into<String>) -> CalendarError {
    CalendarError {
        line,
        problem: text.into(),
    }
}

/// Which kind of file a calendar was read from (`calendars.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarFormat {
    Ics,
    Toml,
}

impl CalendarFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarFormat::Ics => "ics",
            CalendarFormat::Toml => "toml",
        }
    }

    /// By the file's name: `.ics` is iCalendar, anything else TOML.
    pub fn of_path(path: &str) -> CalendarFormat {
        if path.to_ascii_lowercase().ends_with(".ics") {
            CalendarFormat::Ics
        } else {
            CalendarFormat::Toml
        }
    }
}

/// A calendar's name: letters, digits, `_`, `-` and `.`, 1 to 200 of them (as a job's name).
pub fn check_name(name: &str) -> Result<(), String> {
    if is_simple_name(name) {
        Ok(())
    } else {
        Err(format!(
            "calendar name `{name}` must be 1 to 200 letters, digits, `_`, `-` or `.` (e.g. nl-holidays)"
        ))
    }
}

impl Calendar {
    /// Reads a calendar file of the given format. `zone` (e.g. `--zone`) wins over the file's own
    /// (`zone =` in TOML, `X-WR-TIMEZONE` in iCalendar); one of them is required.
    pub fn parse(
        name: &str,
        format: CalendarFormat,
        text: &str,
        zone: Option<Tz>,
    ) -> Result<Calendar, CalendarError> {
        check_name(name).map_err(|p| problem(None, p))?;
        if text.len() > MAX_SOURCE {
            return Err(problem(
                None,
                format!("the file is larger than {MAX_SOURCE} bytes"),
            ));
        }
        let calendar = match format {
            CalendarFormat::Ics => Calendar::from_ics(name, text, zone),
            CalendarFormat::Toml => Calendar::from_toml(name, text, zone),
        }?;
        if calendar.entries.len() > MAX_ENTRIES {
            return Err(problem(
                None,
                format!(
                    "{} entries; a calendar holds at most {MAX_ENTRIES}",
                    calendar.entries.len()
                ),
            ));
        }
        Ok(calendar)
    }

    /// Reads a TOML calendar:
    ///
    /// ```toml
    /// zone = "Europe/Amsterdam"
    /// description = "Dutch public holidays"
    /// days = [2026-04-27, "2026-05-05"]        # whole days
    /// yearly = ["01-01", "12-25"]              # every year on this month-day
    /// weekdays = ["sat", "sun"]                # every week on these days
    /// ranges = [
    ///   { from = 2026-12-21, to = 2027-01-03 },                      # whole days, both included
    ///   { from = 2026-12-18T18:00:00, to = 2027-01-04T06:00:00 },   # local times, end excluded
    /// ]
    /// ```
    pub fn from_toml(name: &str, text: &str, zone: Option<Tz>) -> Result<Calendar, CalendarError> {
        toml_calendar::read(name, text, zone)
    }

    /// Reads an iCalendar (`.ics`) file; see the module's documentation for what is understood.
    pub fn from_ics(name: &str, text: &str, zone: Option<Tz>) -> Result<Calendar, CalendarError> {
        ics::read(name, text, zone)
    }

    /// Whether the calendar contains the instant `t`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let day = t.with_timezone(&self.zone).date_naive();
        self.entries.iter().any(|e| e.contains(t, day))
    }

    /// A lower bound of the end of the stretch of time the calendar contains around `t` (which
    /// it contains): the largest end among the entries that contain `t`.
    fn contained_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let day = t.with_timezone(&self.zone).date_naive();
        self.entries
            .iter()
            .filter(|e| e.contains(t, day))
            .filter_map(|e| e.end_after(t, day, self.zone))
            .max()
    }

    /// The earliest instant after `t` at which an entry begins to contain time (`t` itself not
    /// contained); `None` if none ever does.
    fn next_start_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let day = t.with_timezone(&self.zone).date_naive();
        self.entries
            .iter()
            .filter_map(|e| e.start_after(t, day, self.zone))
            .min()
    }
}

impl Entry {
    fn contains(&self, t: DateTime<Utc>, day: NaiveDate) -> bool {
        match self {
            Entry::Days { first, last } => *first <= day && day <= *last,
            Entry::Yearly {
                month,
                day: d,
                first_year,
                last_year,
            } => {
                day.month() == *month
                    && day.day() == *d
                    && day.year() >= *first_year
                    && last_year.is_none_or(|l| day.year() <= l)
            }
            Entry::Weekly { days, first, last } => {
                days.contains(&day.weekday())
                    && first.is_none_or(|f| f <= day)
                    && last.is_none_or(|l| day <= l)
            }
            Entry::Span { from, to } => *from <= t && t < *to,
        }
    }

    /// Where the entry stops containing time, for an entry that contains `t` (on local `day`).
    fn end_after(&self, t: DateTime<Utc>, day: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            Entry::Days { last, .. } => start_of(last.succ_opt()?, zone),
            Entry::Yearly { .. } | Entry::Weekly { .. } => start_of(day.succ_opt()?, zone),
            Entry::Span { to, .. } => Some(*to),
        }
        .filter(|end| *end > t)
    }

    /// The first instant after `t` at which the entry contains time, if it ever does again.
    fn start_after(&self, t: DateTime<Utc>, day: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
        let later = |d: NaiveDate| start_of(d, zone).filter(|s| *s > t);
        match self {
            Entry::Days { first, .. } => later(*first),
            Entry::Span { from, .. } => Some(*from).filter(|f| *f > t),
            Entry::Yearly {
                month,
                day: d,
                first_year,
                last_year,
            } => {
                let from = day.year().max(*first_year);
                // Eight years reach the next February 29 too.
                (from..from.saturating_add(9))
                    .take_while(|y| last_year.is_none_or(|l| *y <= l))
                    .filter_map(|y| NaiveDate::from_ymd_opt(y, *month, *d))
                    .find_map(later)
            }
            Entry::Weekly { days, first, last } => {
                let from = first.map_or(day, |f| f.max(day));
                from.iter_days()
                    .take(8)
                    .take_while(|d| last.is_none_or(|l| *d <= l))
                    .filter(|d| days.contains(&d.weekday()))
                    .find_map(later)
            }
        }
    }
}

/// The first instant of local `day` in `zone`: its midnight, or where a DST gap over midnight
/// ends (America/Santiago moves its clocks at midnight).
pub fn start_of(day: NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    let midnight = day.and_hms_opt(0, 0, 0)?;
    (0..=26 * 60).find_map(|minutes| {
        match zone.from_local_datetime(&(midnight + Duration::minutes(minutes))) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => Some(x.with_timezone(&Utc)),
            LocalResult::None => None,
        }
    })
}

/// A local time in `zone` as an instant: in a DST gap, the first instant after it; in a fold,
/// the first occurrence (as `start`/`end` of a job are read).
fn local_instant(t: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    (0..=26 * 60).find_map(|minutes| {
        match zone.from_local_datetime(&(t + Duration::minutes(minutes))) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => Some(x.with_timezone(&Utc)),
            LocalResult::None => None,
        }
    })
}

/// Why a slot is excluded: by a `skip_on` calendar that contains it, or by `only_on` calendars
/// none of which contains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion<'a> {
    SkipOn(&'a str),
    OnlyOn(Vec<&'a str>),
}

impl Exclusion<'_> {
    /// The excluding calendar's name (the first `only_on` calendar when there are several).
    pub fn calendar(&self) -> &str {
        match self {
            Exclusion::SkipOn(name) => name,
            Exclusion::OnlyOn(names) => names.first().copied().unwrap_or(""),
        }
    }
}

impl fmt::Display for Exclusion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exclusion::SkipOn(name) => write!(f, "skip_on calendar `{name}` contains the slot"),
            Exclusion::OnlyOn(names) => {
                let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                write!(
                    f,
                    "only_on calendar {} does not contain the slot",
                    names.join(" or ")
                )
            }
        }
    }
}

/// A job's calendars: `skip_on` and `only_on`, resolved.
#[derive(Debug, Clone, Default)]
pub struct CalendarSet {
    skip_on: Vec<Arc<Calendar>>,
    only_on: Vec<Arc<Calendar>>,
}

impl CalendarSet {
    pub fn new(skip_on: Vec<Arc<Calendar>>, only_on: Vec<Arc<Calendar>>) -> CalendarSet {
        CalendarSet { skip_on, only_on }
    }

    /// Resolves a job's `skip_on` and `only_on` names with `find`; the first unknown name, with
    /// its key, if any.
    pub fn resolve<'n>(
        skip_on: &'n [String],
        only_on: &'n [String],
        mut find: impl FnMut(&str) -> Option<Arc<Calendar>>,
    ) -> Result<CalendarSet, (&'static str, &'n str)> {
        let mut set = CalendarSet::default();
        for (key, names, into) in [
            ("skip_on", skip_on, &mut set.skip_on),
            ("only_on", only_on, &mut set.only_on),
        ] {
            for name in names {
                into.push(find(name).ok_or((key, name.as_str()))?);
            }
        }
        Ok(set)
    }

    /// Whether the set has no calendar (excludes nothing).
    pub fn is_empty(&self) -> bool {
        self.skip_on.is_empty() && self.only_on.is_empty()
    }

    /// Why the instant `t` is excluded, or `None` when it is not.
    pub fn excluded_by(&self, t: DateTime<Utc>) -> Option<Exclusion<'_>> {
        if let Some(c) = self.skip_on.iter().find(|c| c.contains(t)) {
            return Some(Exclusion::SkipOn(&c.name));
        }
        if !self.only_on.is_empty() && !self.only_on.iter().any(|c| c.contains(t)) {
            return Some(Exclusion::OnlyOn(
                self.only_on.iter().map(|c| c.name.as_str()).collect(),
            ));
        }
        None
    }

    /// The excluding calendar's name at `t` (the predicate `explain` takes).
    pub fn excluding_calendar(&self, t: DateTime<Utc>) -> Option<String> {
        self.excluded_by(t).map(|e| e.calendar().to_string())
    }

    /// For an excluded `t`: a lower bound of the next instant that may be allowed (`None`: none
    /// ever is). Nothing between `t` and it is allowed, so a search may jump there.
    fn resume_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut bound = t;
        for c in self.skip_on.iter().filter(|c| c.contains(t)) {
            bound = bound.max(c.contained_until(t).unwrap_or(bound));
        }
        if !self.only_on.is_empty() && !self.only_on.iter().any(|c| c.contains(t)) {
            let start = self
                .only_on
                .iter()
                .filter_map(|c| c.next_start_after(t))
                .min()?;
            bound = bound.max(start);
        }
        Some(bound)
    }

    /// The first slot of `schedule` after `after` and no later than `until` that the set does
    /// not exclude. An interval schedule's slots can fall at any time, so for it this is the
    /// first allowed instant after `after`.
    pub fn next_slot(
        &self,
        schedule: &Schedule,
        tz: Tz,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let tick = Duration::microseconds(1);
        let mut cursor = after;
        loop {
            let slot = match schedule {
                Schedule::Interval(_) => cursor + tick,
                other => other.next_after(cursor, tz)?,
            };
            if slot > until {
                return None;
            }
            if self.excluded_by(slot).is_none() {
                return Some(slot);
            }
            let resume = self.resume_after(slot)?;
            cursor = if resume > slot { resume - tick } else { slot };
        }
    }

    /// Whether the set leaves `schedule` at least one slot between `from` and
    /// [`HORIZON_YEARS`] later: `apply` refuses a job whose calendars exclude every one, as it
    /// refuses a cron line that never fires.
    pub fn leaves_a_slot(&self, schedule: &Schedule, tz: Tz, from: DateTime<Utc>) -> bool {
        let until = from + Duration::days(HORIZON_YEARS * 366);
        let before = from - Duration::microseconds(1);
        self.is_empty() || self.next_slot(schedule, tz, before, until).is_some()
    }
}

/// Parses `2026-12-25` (also as a TOML date).
fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

fn weekday(text: &str) -> Option<Weekday> {
    match text.trim().to_ascii_lowercase().as_str() {
        "mo" | "mon" | "monday" => Some(Weekday::Mon),
        "tu" | "tue" | "tuesday" => Some(Weekday::Tue),
        "we" | "wed" | "wednesday" => Some(Weekday::Wed),
        "th" | "thu" | "thursday" => Some(Weekday::Thu),
        "fr" | "fri" | "friday" => Some(Weekday::Fri),
        "sa" | "sat" | "saturday" => Some(Weekday::Sat),
        "su" | "sun" | "sunday" => Some(Weekday::Sun),
        _ => None,
    }
}

fn zone_named(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("unknown time zone `{name}`; use an IANA name such as Europe/Amsterdam")
    })
}

mod toml_calendar {
    //! The TOML form of a calendar.

    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        zone: Option<String>,
        description: Option<String>,
        #[serde(default)]
        days: Vec<toml::Value>,
        #[serde(default)]
        yearly: Vec<String>,
        #[serde(default)]
        weekdays: Vec<String>,
        #[serde(default)]
        ranges: Vec<Range>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Range {
        from: toml::Value,
        to: toml::Value,
    }

    /// A date or a local date-time, as a TOML value or a string.
    enum When {
        Date(NaiveDate),
        Local(NaiveDateTime),
    }

    fn when(v: &toml::Value) -> Option<When> {
        let text = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) if d.offset.is_none() => d.to_string(),
            _ => return None,
        };
        if let Some(d) = parse_date(&text) {
            return Some(When::Date(d));
        }
        [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text.trim(), f).ok())
        .map(When::Local)
    }

    fn shown(v: &toml::Value) -> String {
        v.to_string()
    }

    pub(super) fn read(
        name: &str,
        text: &str,
        zone: Option<Tz>,
    ) -> Result<Calendar, CalendarError> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            problem(line, e.message().to_string())
        })?;
        let zone = match (zone, &file.zone) {
            (Some(z), _) => z,
            (None, Some(z)) => zone_named(z).map_err(|p| problem(None, format!("zone: {p}")))?,
            (None, None) => {
                return Err(problem(
                    None,
                    "no zone: write zone = \"Europe/Amsterdam\" (an IANA name) or give --zone",
                ))
            }
        };
        let mut entries = Vec::new();
        for v in &file.days {
            match when(v) {
                Some(When::Date(d)) => entries.push(Entry::Days { first: d, last: d }),
                _ => {
                    return Err(problem(
                        None,
                        format!("days: {} is not a date such as 2026-12-25", shown(v)),
                    ))
                }
            }
        }
        for md in &file.yearly {
            entries.push(yearly(md)?);
        }
        if !file.weekdays.is_empty() {
            let days = file
                .weekdays
                .iter()
                .map(|w| {
                    weekday(w).ok_or_else(|| {
                        problem(
                            None,
                            format!("weekdays: `{w}` is not a day such as mon or sat"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            entries.push(Entry::Weekly {
                days,
                first: None,
                last: None,
            });
        }
        for r in &file.ranges {
            entries.push(range(r, zone)?);
        }
        Ok(Calendar {
            name: name.to_string(),
            zone,
            entries,
            description: file.description,
        })
    }

    fn yearly(md: &str) -> Result<Entry, CalendarError> {
        let bad = || {
            problem(
                None,
                format!("yearly: `{md}` is not a month and day such as 12-25"),
            )
        };
        let (m, d) = md.trim().split_once('-').ok_or_else(bad)?;
        let (month, day): (u32, u32) =
            (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
        // 2024 is a leap year: February 29 is a valid yearly date.
        NaiveDate::from_ymd_opt(2024, month, day).ok_or_else(bad)?;
        Ok(Entry::Yearly {
            month,
            day,
            first_year: i32::MIN,
            last_year: None,
        })
    }

    fn range(r: &Range, zone: Tz) -> Result<Entry, CalendarError> {
        let bad = |what: &str| {
            problem(
                None,
                format!(
                    "ranges: {{ from = {}, to = {} }}: {what}",
                    shown(&r.from),
                    shown(&r.to)
                ),
            )
        };
        match (when(&r.from), when(&r.to)) {
            (Some(When::Date(first)), Some(When::Date(last))) if last >= first => {
                Ok(Entry::Days { first, last })
            }
            (Some(When::Date(_)), Some(When::Date(_))) => Err(bad("`to` is before `from`")),
            (Some(When::Local(from)), Some(When::Local(to))) => {
                let from =
                    local_instant(from, zone).ok_or_else(|| bad("`from` is out of range"))?;
                let to = local_instant(to, zone).ok_or_else(|| bad("`to` is out of range"))?;
                if to <= from {
                    return Err(bad("`to` is not after `from`"));
                }
                Ok(Entry::Span { from, to })
            }
            _ => Err(bad(
                "write both as dates (whole days, both included) or both as local date-times \
                 (the end excluded), e.g. 2026-12-21 or 2026-12-18T18:00:00",
            )),
        }
    }
}

mod ics {
    //! The iCalendar form of a calendar, parsed by the `icalendar` crate; the lines are tracked
    //! here so that every problem names the line of the file it is on.

    use super::*;
    use icalendar::parser::{read_calendar, unfold, Component, Property};

    /// The logical (unfolded) lines of the file with the number of the line each starts on.
    fn logical_lines(text: &str) -> Vec<(usize, String)> {
        let mut lines: Vec<(usize, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
                (Some(rest), Some((_, last))) => last.push_str(rest),
                _ if raw.is_empty() => {}
                _ => lines.push((i + 1, raw.to_string())),
            }
        }
        lines
    }

    /// Line-level checks the parser's own errors would not place: every content line is
    /// `NAME[;PARAM=VALUE]:VALUE`, and `BEGIN`/`END` nest.
    fn check_lines(lines: &[(usize, String)]) -> Result<(), CalendarError> {
        let mut open: Vec<(usize, String)> = Vec::new();
        for (n, line) in lines {
            let name_end = line.find([':', ';']).unwrap_or(line.len());
            let name = &line[..name_end];
            let ok_name =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok_name || name_end == line.len() || !has_value_colon(line) {
                return Err(problem(
                    Some(*n),
                    format!("`{}` is not a content line (NAME:VALUE)", shorten(line)),
                ));
            }
            let value = value_of(line).trim().to_ascii_uppercase();
            match name.to_ascii_uppercase().as_str() {
                "BEGIN" => open.push((*n, value)),
                "END" => match open.pop() {
                    Some((_, begun)) if begun == value => {}
                    Some((at, begun)) => {
                        return Err(problem(
                            Some(*n),
                            format!("END:{value} closes BEGIN:{begun} of line {at}"),
                        ))
                    }
                    None => return Err(problem(Some(*n), format!("END:{value} without a BEGIN"))),
                },
                _ if open.is_empty() => {
                    return Err(problem(
                        Some(*n),
                        format!("`{}` is outside BEGIN:VCALENDAR", shorten(line)),
                    ))
                }
                _ => {}
            }
        }
        match open.pop() {
            Some((at, begun)) => Err(problem(
                Some(at),
                format!("BEGIN:{begun} is never closed (END:{begun})"),
            )),
            None if lines.is_empty() => Err(problem(None, "the file is empty")),
            None => Ok(()),
        }
    }

    /// Whether a colon ends the name and parameters (outside quoted parameter values).
    fn has_value_colon(line: &str) -> bool {
        value_start(line).is_some()
    }

    fn value_start(line: &str) -> Option<usize> {
        let mut quoted = false;
        for (i, c) in line.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ':' if !quoted => return Some(i + 1),
                _ => {}
            }
        }
        None
    }

    fn value_of(line: &str) -> &str {
        value_start(line).map_or("", |i| &line[i..])
    }

    fn shorten(line: &str) -> String {
        let cut: String = line.chars().take(60).collect();
        if cut.len() < line.len() {
            format!("{cut}…")
        } else {
            cut
        }
    }

    /// Where each `VEVENT` begins and ends (line numbers), in file order.
    fn event_lines(lines: &[(usize, String)]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut begun = None;
        for (n, line) in lines {
            let upper = line.trim().to_ascii_uppercase();
            if upper == "BEGIN:VEVENT" {
                begun = Some(*n);
            } else if upper == "END:VEVENT" {
                if let Some(b) = begun.take() {
                    out.push((b, *n));
                }
            }
        }
        out
    }

    pub(super) fn read(
        name: &str,
        text: &str,
        zone: Option<Tz>,
    ) -> Result<Calendar, CalendarError> {
        let lines = logical_lines(text);
        check_lines(&lines)?;
        let unfolded = unfold(text);
        let parsed = read_calendar(&unfolded).map_err(|e| {
            let first = e.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            problem(None, format!("not an iCalendar file: {}", first.trim()))
        })?;
        let file_zone = parsed
            .properties
            .iter()
            .find(|p| p.name.as_str().eq_ignore_ascii_case("X-WR-TIMEZONE"))
            .map(|p| p.val.as_str().to_string());
        let description = parsed
            .properties
            .iter()
            .find(|p| p.name.as_str().eq_ignore_ascii_case("X-WR-CALNAME"))
            .map(|p| p.val.as_str().to_string());
        let zone = match (zone, file_zone) {
            (Some(z), _) => z,
            (None, Some(z)) => zone_named(&z)
                .map_err(|p| problem(None, format!("X-WR-TIMEZONE: {p}; or give --zone")))?,
            (None, None) => {
                return Err(problem(
                    None,
                    "the file names no zone (X-WR-TIMEZONE): give --zone (an IANA name such as Europe/Amsterdam)",
                ))
            }
        };
        let events: Vec<&Component> = parsed
            .components
            .iter()
            .filter(|c| c.name.as_str().eq_ignore_ascii_case("VEVENT"))
            .collect();
        let places = event_lines(&lines);
        let mut entries = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let (begin, end) = places.get(i).copied().unwrap_or((0, 0));
            let at = Place {
                lines: &lines,
                begin,
                end,
            };
            if let Some(entry) = event_entry(event, zone, &at)? {
                entries.push(entry);
            }
        }
        Ok(Calendar {
            name: name.to_string(),
            zone,
            entries,
            description,
        })
    }

    /// An event's lines, to name the line of a property.
    struct Place<'a> {
        lines: &'a [(usize, String)],
        begin: usize,
        end: usize,
    }

    impl Place<'_> {
        fn of(&self, property: &str) -> Option<usize> {
            self.lines
                .iter()
                .filter(|(n, _)| *n > self.begin && *n < self.end)
                .find(|(_, l)| {
                    let name_end = l.find([':', ';']).unwrap_or(l.len());
                    l[..name_end].eq_ignore_ascii_case(property)
                })
                .map(|(n, _)| *n)
                .or(Some(self.begin).filter(|b| *b > 0))
        }

        fn error(&self, property: &str, text: String) -> CalendarError {
            problem(self.of(property), format!("{property}: {text}"))
        }
    }

    fn prop<'a>(event: &'a Component, name: &str) -> Option<&'a Property<'a>> {
        event
            .properties
            .iter()
            .find(|p| p.name.as_str().eq_ignore_ascii_case(name))
    }

    fn param<'a>(p: &'a Property, key: &str) -> Option<&'a str> {
        p.params
            .iter()
            .find(|x| x.key.as_str().eq_ignore_ascii_case(key))
            .and_then(|x| x.val.as_ref())
            .map(|v| v.as_str().trim_matches('"'))
    }

    /// A `DTSTART`/`DTEND` value: a date, or an instant.
    #[derive(Clone, Copy)]
    enum Value {
        Date(NaiveDate),
        Instant(DateTime<Utc>),
    }

    fn value(p: &Property, zone: Tz, at: &Place, name: &str) -> Result<Value, CalendarError> {
        let text = p.val.as_str().trim();
        let is_date = param(p, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
            || (text.len() == 8 && text.chars().all(|c| c.is_ascii_digit()));
        if is_date {
            return NaiveDate::parse_from_str(text, "%Y%m%d")
                .map(Value::Date)
                .map_err(|_| at.error(name, format!("`{text}` is not a date (YYYYMMDD)")));
        }
        let (local, utc) = match text.strip_suffix(['Z', 'z']) {
            Some(t) => (t, true),
            None => (text, false),
        };
        let naive = NaiveDateTime::parse_from_str(local, "%Y%m%dT%H%M%S").map_err(|_| {
            at.error(
                name,
                format!("`{text}` is not a date-time (YYYYMMDDTHHMMSS[Z])"),
            )
        })?;
        if utc {
            return Ok(Value::Instant(Utc.from_utc_datetime(&naive)));
        }
        let in_zone = match param(p, "TZID") {
            Some(tzid) => tzid.trim_start_matches('/').parse::<Tz>().map_err(|_| {
                at.error(
                    name,
                    format!("TZID `{tzid}` is not an IANA zone name (such as Europe/Amsterdam)"),
                )
            })?,
            None => zone,
        };
        local_instant(naive, in_zone)
            .map(Value::Instant)
            .ok_or_else(|| at.error(name, format!("`{text}` is out of range")))
    }

    /// `DURATION`: `P1D`, `PT2H30M`, `P1W`, … (no months or years, as RFC 5545 has none).
    fn duration(text: &str) -> Option<Duration> {
        let t = text.trim().strip_prefix('+').unwrap_or(text.trim());
        let rest = t.strip_prefix('P')?;
        let (date, time) = match rest.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (rest, None),
        };
        let mut total = Duration::zero();
        let mut parts = |s: &str, units: &[(char, i64)]| -> Option<()> {
            let mut number = String::new();
            for c in s.chars() {
                if c.is_ascii_digit() {
                    number.push(c);
                } else {
                    let secs = units.iter().find(|(u, _)| *u == c)?.1;
                    let n: i64 = number.parse().ok()?;
                    total += Duration::seconds(n.checked_mul(secs)?);
                    number.clear();
                }
            }
            number.is_empty().then_some(())
        };
        parts(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
        if let Some(time) = time {
            parts(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
        }
        Some(total)
    }

    fn event_entry(
        event: &Component,
        zone: Tz,
        at: &Place,
    ) -> Result<Option<Entry>, CalendarError> {
        if prop(event, "STATUS")
            .is_some_and(|s| s.val.as_str().trim().eq_ignore_ascii_case("CANCELLED"))
        {
            return Ok(None);
        }
        for refused in ["RDATE", "EXDATE", "EXRULE"] {
            if prop(event, refused).is_some() {
                return Err(at.error(
                    refused,
                    "is not supported (list the days as events of their own, or leave them out)"
                        .to_string(),
                ));
            }
        }
        let start = prop(event, "DTSTART")
            .ok_or_else(|| problem(Some(at.begin).filter(|b| *b > 0), "VEVENT without DTSTART"))?;
        let start = value(start, zone, at, "DTSTART")?;
        let end = prop(event, "DTEND")
            .map(|p| value(p, zone, at, "DTEND"))
            .transpose()?;
        let length = prop(event, "DURATION")
            .map(|p| {
                duration(p.val.as_str()).ok_or_else(|| {
                    at.error(
                        "DURATION",
                        format!("`{}` is not a duration such as P1D or PT2H", p.val.as_str()),
                    )
                })
            })
            .transpose()?;
        let rule = prop(event, "RRULE");
        match start {
            Value::Date(first) => {
                let last = match (end, length) {
                    (Some(Value::Date(e)), _) if e > first => e.pred_opt().unwrap_or(e),
                    (Some(Value::Date(_)), _) => {
                        return Err(at.error("DTEND", "is not after DTSTART".to_string()))
                    }
                    (Some(Value::Instant(_)), _) => {
                        return Err(at.error(
                            "DTEND",
                            "is a date-time while DTSTART is a date".to_string(),
                        ))
                    }
                    (None, Some(d)) if d.num_days() >= 1 => {
                        first + Duration::days(d.num_days() - 1)
                    }
                    (None, Some(_)) => {
                        return Err(at.error(
                            "DURATION",
                            "of an all-day event must be whole days".to_string(),
                        ))
                    }
                    (None, None) => first,
                };
                match rule {
                    None => Ok(Some(Entry::Days { first, last })),
                    Some(_) if last != first => Err(at.error(
                        "RRULE",
                        "on an event longer than one day is not supported".to_string(),
                    )),
                    Some(r) => recurrence(r.val.as_str(), first, at).map(Some),
                }
            }
            Value::Instant(from) => {
                if rule.is_some() {
                    return Err(at.error(
                        "RRULE",
                        "on a timed event is not supported (only on all-day events: DTSTART;VALUE=DATE)"
                            .to_string(),
                    ));
                }
                let to = match (end, length) {
                    (Some(Value::Instant(t)), _) => t,
                    (Some(Value::Date(_)), _) => {
                        return Err(at.error(
                            "DTEND",
                            "is a date while DTSTART is a date-time".to_string(),
                        ))
                    }
                    (None, Some(d)) => from + d,
                    (None, None) => {
                        return Err(at.error(
                            "DTSTART",
                            "a timed event needs DTEND or DURATION".to_string(),
                        ))
                    }
                };
                if to <= from {
                    return Err(at.error("DTEND", "is not after DTSTART".to_string()));
                }
                Ok(Some(Entry::Span { from, to }))
            }
        }
    }

    /// An `RRULE` of a one-day all-day event starting on `first`.
    fn recurrence(rule: &str, first: NaiveDate, at: &Place) -> Result<Entry, CalendarError> {
        let refuse = |what: String| at.error("RRULE", format!("`{rule}`: {what}"));
        let mut freq = None;
        let mut until = None;
        let mut count: Option<u32> = None;
        let mut by_day = None;
        for part in rule.split(';').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| refuse(format!("`{part}` is not KEY=VALUE")))?;
            let value = value.trim();
            match key.trim().to_ascii_uppercase().as_str() {
                "FREQ" => freq = Some(value.to_ascii_uppercase()),
                "INTERVAL" if value == "1" => {}
                "UNTIL" => {
                    let date = value
                        .get(..8)
                        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok());
                    until =
                        Some(date.ok_or_else(|| refuse(format!("UNTIL `{value}` is not a date")))?);
                }
                "COUNT" => {
                    count = Some(value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        refuse(format!("COUNT `{value}` is not a positive number"))
                    })?)
                }
                "BYMONTH" if value.parse() == Ok(first.month()) => {}
                "BYMONTHDAY" if value.parse() == Ok(first.day()) => {}
                "BYDAY" => by_day = Some(value.to_string()),
                "WKST" => {}
                other => {
                    return Err(refuse(format!(
                        "{other}={value} is not supported (supported: FREQ=YEARLY on DTSTART's \
                         date, FREQ=WEEKLY with BYDAY, INTERVAL=1, UNTIL, COUNT)"
                    )))
                }
            }
        }
        match freq.as_deref() {
            Some("YEARLY") => {
                if by_day.is_some() {
                    return Err(refuse("BYDAY with FREQ=YEARLY (a moving holiday) is not supported; list its dates as events".to_string()));
                }
                let last_year = match (until, count) {
                    (Some(u), _) => Some(u.year()),
                    (None, Some(n)) => Some(first.year().saturating_add(n as i32 - 1)),
                    (None, None) => None,
                };
                Ok(Entry::Yearly {
                    month: first.month(),
                    day: first.day(),
                    first_year: first.year(),
                    last_year,
                })
            }
            Some("WEEKLY") => {
                let days = match &by_day {
                    None => vec![first.weekday()],
                    Some(list) => list
                        .split(',')
                        .map(|d| {
                            weekday(d).ok_or_else(|| {
                                refuse(format!("BYDAY `{d}` is not a day such as MO"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                };
                let last = match (until, count) {
                    (Some(u), _) => Some(u),
                    (None, Some(n)) => first
                        .iter_days()
                        .filter(|d| days.contains(&d.weekday()))
                        .nth(n as usize - 1),
                    (None, None) => None,
                };
                Ok(Entry::Weekly {
                    days,
                    first: Some(first),
                    last,
                })
            }
            Some(other) => Err(refuse(format!(
                "FREQ={other} is not supported (supported: YEARLY and WEEKLY)"
            ))),
            None => Err(refuse("has no FREQ".to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn durations_of_ics() {
        assert_eq!(ics_duration("P1D"), Some(Duration::days(1)));
        assert_eq!(ics_duration("PT2H30M"), Some(Duration::minutes(150)));
        assert_eq!(ics_duration("P1W"), Some(Duration::days(7)));
        assert_eq!(ics_duration("P1DT1S"), Some(Duration::seconds(86_401)));
        assert_eq!(ics_duration("1D"), None);
        assert_eq!(ics_duration("P1X"), None);
    }

    fn ics_duration(s: &str) -> Option<Duration> {
        // Through a one-event file, as a user would.
        let text = format!(
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20260101T000000Z\nDURATION:{s}\nEND:VEVENT\nEND:VCALENDAR\n"
        );
        match Calendar::from_ics("d", &text, Some(Tz::UTC))
            .ok()?
            .entries
            .first()?
        {
            Entry::Span { from, to } => Some(*to - *from),
            _ => None,
        }
    }

    #[test]
    fn a_gap_at_midnight_starts_the_day_when_it_ends() {
        // America/Santiago 2026-09-06: 00:00 -04 → 01:00 -03, so the day starts at 01:00 -03, 04:00Z.
        let zone: Tz = "America/Santiago".parse().expect("zone");
        let day = NaiveDate::from_ymd_opt(2026, 9, 6).expect("date");
        assert_eq!(start_of(day, zone), Some(utc("2026-09-06T04:00:00Z")));
    }
}
