//! A schedule explained: in words, its next fire times in local time and UTC, and what each DST
//! transition in that window does to it and why, naming the rule ([`DstRule`]).
//!
//! `sisyctl cron EXPR --explain` and `sisyctl job explain` print an [`Explanation`] (as text with
//! its `Display`, or as JSON); the dashboard shows the same value. Calendars are not known here:
//! the caller passes an exclusion predicate that names the calendar excluding a slot (or `None`),
//! and the slot is shown with that name ([`Fire::skipped_by`]).

use std::fmt;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::cron::{field_value, CronExpr, DstRule};
use super::zone::{self, Transition};
use super::Schedule;
use crate::spec::JobSpec;

/// Which calendar, if any, excludes a slot (its name). The scheduler records such a slot as
/// `skipped`; explanations show it as one.
pub type Exclusion<'a> = &'a dyn Fn(DateTime<Utc>) -> Option<String>;

/// An [`Exclusion`] that excludes nothing.
pub fn no_exclusions(_: DateTime<Utc>) -> Option<String> {
    None
}

/// A schedule explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The schedule as written (`Schedule::describe`).
    pub schedule: String,
    /// The IANA zone it is read in.
    pub zone: String,
    /// The schedule in words, one entry per cron line (one for an interval or a one-shot time).
    pub words: Vec<String>,
    /// Each cron line's DST rule.
    pub rules: Vec<LineRule>,
    /// The next fire times (slots), oldest first.
    pub fires: Vec<Fire>,
    /// The zone's clock changes between the start and the last fire time shown.
    pub transitions: Vec<TransitionNote>,
    /// Anything else worth knowing (the window, how an interval counts, …).
    pub notes: Vec<String>,
}

/// One cron line's DST rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineRule {
    pub line: String,
    pub rule: DstRule,
    /// `interval rule` or `fixed-time rule`.
    pub name: &'static str,
    pub summary: &'static str,
}

/// One fire time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fire {
    pub utc: DateTime<Utc>,
    /// The wall-clock time with its offset (RFC 3339).
    pub local: String,
    /// The zone's abbreviation at that time (`CEST`, or the offset where the zone has none).
    pub abbreviation: String,
    /// What a DST transition does to this fire, and by which rule.
    pub note: Option<String>,
    /// The calendar that excludes this slot: it is recorded as `skipped`, not run.
    pub skipped_by: Option<String>,
}

/// Clocks going forward (a gap) or back (a fold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    SpringForward,
    FallBack,
}

/// A DST transition inside the window, and what it does to the schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionNote {
    /// The first instant on the new offset.
    pub at: DateTime<Utc>,
    pub kind: TransitionKind,
    /// The wall clock just before and from `at` on (`2026-10-25 03:00 CEST` → `02:00 CET`).
    pub clock_before: String,
    pub clock_after: String,
    /// What happens to each cron line, and why.
    pub note: String,
}

/// The next `count` slots of `schedule` strictly after `from`, explained. Interval schedules have
/// no clock slots (the next one depends on when the previous run ends), so they show none.
pub fn explain(
    schedule: &Schedule,
    tz: Tz,
    from: DateTime<Utc>,
    count: usize,
    excluded: Exclusion<'_>,
) -> Explanation {
    let mut fires = Vec::with_capacity(count.min(1024));
    let mut cursor = from;
    while fires.len() < count {
        match schedule.next_after(cursor, tz) {
            Some(t) => {
                fires.push(t);
                cursor = t;
            }
            None => break,
        }
    }
    explain_fires(schedule, tz, from, &fires, excluded)
}

/// As [`explain`], for fire times the caller worked out (a stored job's next slots, which also
/// heed its window and iterations); `fires` are slots of `schedule` after `from`, oldest first.
pub fn explain_fires(
    schedule: &Schedule,
    tz: Tz,
    from: DateTime<Utc>,
    fires: &[DateTime<Utc>],
    excluded: Exclusion<'_>,
) -> Explanation {
    let lines: &[CronExpr] = match schedule {
        Schedule::Cron(lines) => lines,
        _ => &[],
    };
    let zone_name = tz.name();
    let words = match schedule {
        Schedule::Cron(lines) => lines
            .iter()
            .map(|c| format!("{}, {zone_name}", describe_cron(c)))
            .collect(),
        Schedule::Interval(every) => vec![format!(
            "every {}, counted from the end of the previous run (the first run at once)",
            super::format_duration(*every)
        )],
        Schedule::At(at) => vec![format!(
            "once, at {} ({})",
            local_clock(*at, tz, true),
            utc(*at)
        )],
    };
    let rules = lines
        .iter()
        .map(|c| LineRule {
            line: c.as_str().to_string(),
            rule: c.dst_rule(),
            name: c.dst_rule().name(),
            summary: c.dst_rule().summary(),
        })
        .collect();
    let transitions = match fires.last() {
        Some(last) if !lines.is_empty() => zone::transitions(tz, from, *last),
        _ => Vec::new(),
    };
    let fires = fires
        .iter()
        .map(|&t| Fire {
            utc: t,
            local: t.with_timezone(&tz).to_rfc3339(),
            abbreviation: t.with_timezone(&tz).format("%Z").to_string(),
            note: fire_note(lines, tz, t),
            skipped_by: excluded(t),
        })
        .collect();
    let mut notes = Vec::new();
    match schedule {
        Schedule::Interval(_) => notes.push(
            "an interval is measured in real time, so DST transitions do not move it; its next \
             slot is known only once the previous run has ended"
                .to_string(),
        ),
        Schedule::At(_) => {
            notes.push("a single instant: DST transitions do not move it".to_string())
        }
        Schedule::Cron(_) => {}
    }
    Explanation {
        schedule: schedule.describe(),
        zone: zone_name.to_string(),
        words,
        rules,
        fires,
        transitions: transitions
            .iter()
            .map(|t| transition_note(lines, tz, t))
            .collect(),
        notes,
    }
}

/// A stored job's schedule explained: as [`explain_fires`] with the job's next slots (which heed
/// its window and iterations), and notes on what else moves its runs — the window, the
/// iterations left, its jitter offset, a pause. A job without a schedule gets words saying so.
pub fn explain_job(
    spec: &JobSpec,
    from: DateTime<Utc>,
    fires: &[DateTime<Utc>],
    excluded: Exclusion<'_>,
) -> Explanation {
    let tz = spec.timezone;
    let mut e = match &spec.schedule {
        Some(schedule) => explain_fires(schedule, tz, from, fires, excluded),
        None => Explanation {
            schedule: "-".to_string(),
            zone: tz.name().to_string(),
            words: vec![if spec.resources.on_inputs {
                "no clock schedule: runs when its inputs are written, or when asked".to_string()
            } else {
                "no schedule: runs only when asked (sisyctl run)".to_string()
            }],
            rules: Vec::new(),
            fires: Vec::new(),
            transitions: Vec::new(),
            notes: Vec::new(),
        },
    };
    if let Some(start) = spec.start {
        e.notes.push(format!(
            "its window starts at {}",
            local_clock(start, tz, true)
        ));
    }
    if let Some(end) = spec.end {
        e.notes
            .push(format!("its window ends at {}", local_clock(end, tz, true)));
    }
    if let Some(n) = spec.iterations {
        e.notes.push(format!("at most {n} scheduled run(s) in all"));
    }
    let offset = super::jitter_offset(&spec.job.project, &spec.job.name, Some(spec.jitter));
    if !offset.is_zero() {
        e.notes.push(format!(
            "each run is due {} after its slot (jitter up to {}; the slots are shown)",
            super::format_duration(offset),
            super::format_duration(spec.jitter)
        ));
    }
    if spec.paused {
        e.notes
            .push("the job is paused: no slot becomes a run until it is resumed".to_string());
    }
    e
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "schedule: {} ({})", self.schedule, self.zone)?;
        for words in &self.words {
            writeln!(f, "in words: {words}")?;
        }
        for rule in &self.rules {
            writeln!(
                f,
                "DST:      `{}` follows the {}: it {}",
                rule.line, rule.name, rule.summary
            )?;
        }
        for note in &self.notes {
            writeln!(f, "note:     {note}")?;
        }
        if self.fires.is_empty() {
            writeln!(f, "no upcoming fire time")?;
        } else {
            writeln!(f, "next {} fire time(s), local and UTC:", self.fires.len())?;
        }
        let width = self
            .fires
            .iter()
            .map(|x| x.abbreviation.len())
            .max()
            .unwrap_or(0);
        for fire in &self.fires {
            let local = DateTime::parse_from_rfc3339(&fire.local).map_or_else(
                |_| fire.local.clone(),
                |l| l.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
            );
            write!(
                f,
                "  {local} {:<width$}  {}",
                fire.abbreviation,
                utc(fire.utc)
            )?;
            if let Some(calendar) = &fire.skipped_by {
                write!(f, "  skipped: calendar {calendar}")?;
            }
            if let Some(note) = &fire.note {
                write!(f, "  ← {note}")?;
            }
            writeln!(f)?;
        }
        if !self.transitions.is_empty() {
            writeln!(f, "DST transitions in this window:")?;
        }
        for t in &self.transitions {
            let way = match t.kind {
                TransitionKind::SpringForward => "clocks go forward",
                TransitionKind::FallBack => "clocks go back",
            };
            writeln!(
                f,
                "  {}: {way}, {} → {}. {}",
                utc(t.at),
                t.clock_before,
                t.clock_after,
                t.note
            )?;
        }
        Ok(())
    }
}

/// `2026-03-29T01:00:00Z`.
fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2026-03-29 03:00 CEST` (with the date) or `03:00 CEST`.
fn local_clock(t: DateTime<Utc>, tz: Tz, with_date: bool) -> String {
    let local = t.with_timezone(&tz);
    let seconds = if local.second() != 0 { ":%S" } else { "" };
    let pattern = if with_date {
        format!("%Y-%m-%d %H:%M{seconds} %Z")
    } else {
        format!("%H:%M{seconds} %Z")
    };
    local.format(&pattern).to_string()
}

/// `02:30`, or `02:30:15` when the seconds are not zero.
fn wall(t: NaiveDateTime) -> String {
    if t.second() != 0 {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

/// `1h`, `30m`.
fn amount(d: Duration) -> String {
    let minutes = d.num_minutes().abs();
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// The wall-clock times in `[from, to)` at which `line` matches, to the second.
fn matching_in(line: &CronExpr, from: NaiveDateTime, to: NaiveDateTime) -> Vec<NaiveDateTime> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        if line.matches_local(t) {
            out.push(t);
        }
        t += Duration::seconds(1);
    }
    out
}

/// `02:00, 02:15, 02:30 and 02:45`, or the first four and how many in all.
fn list_times(times: &[NaiveDateTime]) -> String {
    const SHOWN: usize = 4;
    let shown: Vec<String> = times.iter().take(SHOWN).map(|t| wall(*t)).collect();
    if times.len() > SHOWN {
        format!("{}, … ({} in all)", shown.join(", "), times.len())
    } else {
        join_and(&shown)
    }
}

/// What a transition does to each cron line, and why.
fn transition_note(lines: &[CronExpr], tz: Tz, t: &Transition) -> TransitionNote {
    let clock_before = (t.at - Duration::seconds(1)).with_timezone(&tz);
    let before_reading = t.at.naive_utc() + t.before;
    let after_reading = t.at.naive_utc() + t.after;
    let before_abbr = clock_before.format("%Z").to_string();
    let (kind, span_from, span_to) = if t.is_gap() {
        (TransitionKind::SpringForward, before_reading, after_reading)
    } else {
        (TransitionKind::FallBack, after_reading, before_reading)
    };
    let span = format!(
        "local times {}–{} {}",
        wall(span_from),
        (span_to - Duration::seconds(1)).format("%H:%M:%S"),
        if t.is_gap() {
            format!("on {} do not exist", span_from.format("%Y-%m-%d"))
        } else {
            format!("on {} happen twice", span_from.format("%Y-%m-%d"))
        }
    );
    let mut effects = Vec::new();
    for line in lines {
        let hit = matching_in(line, span_from, span_to);
        let rule = line.dst_rule();
        let effect = match (hit.is_empty(), t.is_gap(), rule) {
            (true, _, _) => format!("`{line}` has no fire time in them, so nothing changes"),
            (false, true, DstRule::FixedTime) => format!(
                "`{line}`: {} {} not exist, so it fires once right after the gap, at {} ({}) — \
                 the fixed-time rule",
                list_times(&hit),
                if hit.len() == 1 { "does" } else { "do" },
                local_clock(t.at, tz, false),
                utc(t.at)
            ),
            (false, true, DstRule::Interval) => format!(
                "`{line}`: {} {} not exist and {} not fire — the interval rule: it keeps its \
                 rhythm in real time",
                list_times(&hit),
                if hit.len() == 1 { "does" } else { "do" },
                if hit.len() == 1 { "does" } else { "do" },
            ),
            (false, false, DstRule::FixedTime) => format!(
                "`{line}`: {} {} twice, and it fires only the first time ({before_abbr}) — the \
                 fixed-time rule",
                list_times(&hit),
                if hit.len() == 1 { "happens" } else { "happen" },
            ),
            (false, false, DstRule::Interval) => format!(
                "`{line}`: {} {} twice, and it fires in both passes ({} times) — the interval \
                 rule: it keeps its rhythm in real time",
                list_times(&hit),
                if hit.len() == 1 { "happens" } else { "happen" },
                hit.len() * 2
            ),
        };
        effects.push(effect);
    }
    let shift = amount(t.shift());
    TransitionNote {
        at: t.at,
        kind,
        clock_before: format!(
            "{} {}",
            before_reading.format("%Y-%m-%d %H:%M"),
            before_abbr
        ),
        clock_after: local_clock(t.at, tz, false),
        note: format!("Clocks move {shift}; {span}. {}.", effects.join("; ")),
    }
}

/// What a DST transition does to the fire at `t`, by the lines that fire then.
fn fire_note(lines: &[CronExpr], tz: Tz, t: DateTime<Utc>) -> Option<String> {
    let local = t.with_timezone(&tz).naive_local();
    let gap =
        zone::next_transition(tz, t - Duration::seconds(1), t).filter(|x| x.at == t && x.is_gap());
    let mut notes = Vec::new();
    for line in lines {
        let fires_here = line
            .next_after(t - Duration::nanoseconds(1), tz)
            .is_some_and(|n| n == t);
        if !fires_here {
            continue;
        }
        let note = match (tz.from_local_datetime(&local), line.dst_rule()) {
            (LocalResult::Ambiguous(first, second), DstRule::FixedTime) if first == t => {
                Some(format!(
                    "{} happens again at {}; `{line}` fires only this first time (fixed-time rule)",
                    wall(local),
                    utc(second.with_timezone(&Utc))
                ))
            }
            (LocalResult::Ambiguous(first, second), DstRule::Interval) => {
                if first == t {
                    Some(format!(
                        "first pass of {}, which happens twice; `{line}` fires again at {} \
                         (interval rule)",
                        wall(local),
                        utc(second.with_timezone(&Utc))
                    ))
                } else {
                    Some(format!(
                        "second pass of {}, which happened first at {}; `{line}` fires in both \
                         (interval rule)",
                        wall(local),
                        utc(first.with_timezone(&Utc))
                    ))
                }
            }
            (_, DstRule::FixedTime) => gap.and_then(|g| {
                let skipped = matching_in(line, t.naive_utc() + g.before, local);
                (!skipped.is_empty()).then(|| {
                    format!(
                        "for {}, which {} not exist on {}; `{line}` fires once right after the \
                         gap (fixed-time rule)",
                        list_times(&skipped),
                        if skipped.len() == 1 { "does" } else { "do" },
                        local.format("%Y-%m-%d")
                    )
                })
            }),
            _ => None,
        };
        notes.extend(note);
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// One element of a field's comma list.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Every,
    Last,
    Value(u32),
    Between(u32, u32),
    /// Every `step`th value from `from` through `to` (`*/step` covers the field's whole range).
    Step {
        step: u32,
        from: u32,
        to: u32,
        star: bool,
    },
}

/// The parts of a field that parsed (`field` names it as `CronError::field` does).
fn parts(field: &str, text: &str, max: u32) -> Vec<Part> {
    let value = |t: &str| field_value(field, t).unwrap_or(0);
    text.split(',')
        .map(|part| {
            if part == "*" || part == "?" {
                return Part::Every;
            }
            if part.eq_ignore_ascii_case("l") {
                return Part::Last;
            }
            let range_of = |r: &str| match r.split_once('-') {
                Some((a, b)) => (value(a), value(b)),
                None => (value(r), value(r)),
            };
            match part.split_once('/') {
                Some((range, step)) => {
                    let step = step.parse().unwrap_or(1);
                    if range == "*" || range == "?" {
                        let min = if field == "day-of-month" || field == "month" {
                            1
                        } else {
                            0
                        };
                        Part::Step {
                            step,
                            from: min,
                            to: max,
                            star: true,
                        }
                    } else if range.contains('-') {
                        let (from, to) = range_of(range);
                        Part::Step {
                            step,
                            from,
                            to,
                            star: false,
                        }
                    } else {
                        Part::Step {
                            step,
                            from: value(range),
                            to: max,
                            star: false,
                        }
                    }
                }
                None => match range_of(part) {
                    (a, b) if a == b => Part::Value(a),
                    (a, b) => Part::Between(a, b),
                },
            }
        })
        .collect()
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `1st`, `2nd`, `3rd`, `11th`, `15th`.
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn month_name(m: u32) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    NAMES
        .get(m.wrapping_sub(1) as usize)
        .map_or_else(|| m.to_string(), |n| n.to_string())
}

fn weekday_name(d: u32) -> String {
    const NAMES: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    NAMES
        .get((d % 7) as usize)
        .map_or_else(|| d.to_string(), |n| n.to_string())
}

/// A clock field (second, minute, hour) in words: `minute 30`, `minutes 0 and 30`, `every
/// 15th minute`, `every minute from 9 through 17`, or a mix of those.
fn clock_field(parts: &[Part], unit: &str) -> String {
    let values: Vec<String> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Value(v) => Some(v.to_string()),
            _ => None,
        })
        .collect();
    let mut phrases = Vec::new();
    match values.len() {
        0 => {}
        1 => phrases.push(format!("{unit} {}", values[0])),
        _ => phrases.push(format!("{unit}s {}", join_and(&values))),
    }
    for part in parts {
        match *part {
            Part::Value(_) | Part::Last => {}
            Part::Every => phrases.push(format!("every {unit}")),
            Part::Between(a, b) => phrases.push(format!("every {unit} from {a} through {b}")),
            Part::Step {
                step: 1,
                star: true,
                ..
            } => phrases.push(format!("every {unit}")),
            Part::Step {
                step, star: true, ..
            } => phrases.push(format!("every {} {unit}", ordinal(step))),
            Part::Step { step, from, to, .. } => phrases.push(format!(
                "every {} {unit} from {from} through {to}",
                ordinal(step)
            )),
        }
    }
    join_and(&phrases)
}

/// A calendar field (day of month, month, day of week) in words, values named by `name`.
fn calendar_field(parts: &[Part], unit: &str, name: fn(u32) -> String) -> String {
    let phrases: Vec<String> = parts
        .iter()
        .map(|part| match *part {
            Part::Every => format!("every {unit}"),
            Part::Last => "the last day of the month".to_string(),
            Part::Value(v) => name(v),
            Part::Between(a, b) => format!("{} through {}", name(a), name(b)),
            Part::Step {
                step, star: true, ..
            } => format!("every {} {unit}", ordinal(step)),
            Part::Step { step, from, to, .. } => format!(
                "every {} {unit} from {} through {}",
                ordinal(step),
                name(from),
                name(to)
            ),
        })
        .collect();
    join_and(&phrases)
}

/// A cron line in words, without its zone: `at minute 30 past hour 2, every day`.
pub fn describe_cron(cron: &CronExpr) -> String {
    let fields = cron.fields();
    let field = |i: usize| fields.get(i).copied().unwrap_or("*");
    let minute = parts("minute", field(0), 59);
    let hour = parts("hour", field(1), 23);
    let dom = parts("day-of-month", field(2), 31);
    let month = parts("month", field(3), 12);
    let dow = parts("day-of-week", field(4), 7);
    let minute_words = clock_field(&minute, "minute");
    let every_hour = hour == [Part::Every];
    let minute_is_values = minute.iter().all(|p| matches!(p, Part::Value(_)));
    let mut time = if every_hour {
        if minute_is_values {
            format!("{minute_words} past every hour")
        } else {
            minute_words
        }
    } else {
        let hour_words = clock_field(&hour, "hour");
        format!("{minute_words} past {hour_words}")
    };
    if let Some(second) = fields.get(5) {
        let second = parts("second", second, 59);
        time = format!("{} of {time}", clock_field(&second, "second"));
    }
    if !time.starts_with("every") {
        time = format!("at {time}");
    }
    let dom_restricted = dom != [Part::Every];
    let dow_restricted = dow != [Part::Every];
    let dom_words = || {
        let values: Vec<String> = dom
            .iter()
            .filter_map(|p| match p {
                Part::Value(v) => Some(v.to_string()),
                _ => None,
            })
            .collect();
        if values.len() == dom.len() {
            let days = if values.len() == 1 { "day" } else { "days" };
            format!("{days} {} of the month", join_and(&values))
        } else {
            format!(
                "{} of the month",
                calendar_field(&dom, "day", |d| format!("day {d}"))
            )
            .replace(
                "the last day of the month of the month",
                "the last day of the month",
            )
        }
    };
    let dow_words = || calendar_field(&dow, "day of the week", weekday_name);
    let days = match (dom_restricted, dow_restricted) {
        (false, false) => "every day".to_string(),
        (true, false) => format!("on {}", dom_words()),
        (false, true) => format!("on {}", dow_words()),
        (true, true) => format!("on {} or on {} (either matches)", dom_words(), dow_words()),
    };
    let months = if month == [Part::Every] {
        String::new()
    } else {
        format!(", in {}", calendar_field(&month, "month", month_name))
    };
    format!("{time}, {days}{months}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(expr: &str) -> String {
        describe_cron(&CronExpr::parse(expr).expect("cron"))
    }

    #[test]
    fn expressions_in_words() {
        let cases = [
            ("30 2 * * *", "at minute 30 past hour 2, every day"),
            ("* * * * *", "every minute, every day"),
            ("*/15 * * * *", "every 15th minute, every day"),
            ("*/15 2 * * *", "every 15th minute past hour 2, every day"),
            ("0 * * * *", "at minute 0 past every hour, every day"),
            (
                "0,15,30,45 9-17 * * mon-fri",
                "at minutes 0, 15, 30 and 45 past every hour from 9 through 17, on Monday \
                 through Friday",
            ),
            ("0 */2 * * *", "at minute 0 past every 2nd hour, every day"),
            (
                "5/15 * * * *",
                "every 15th minute from 5 through 59, every day",
            ),
            (
                "0 12 L * *",
                "at minute 0 past hour 12, on the last day of the month",
            ),
            (
                "0 0 1,15 jan,jul *",
                "at minute 0 past hour 0, on days 1 and 15 of the month, in January and July",
            ),
            (
                "0 0 13 * fri",
                "at minute 0 past hour 0, on day 13 of the month or on Friday (either matches)",
            ),
            ("0 0 * * 0", "at minute 0 past hour 0, on Sunday"),
            ("0 0 * * 7", "at minute 0 past hour 0, on Sunday"),
            (
                "30 2 * * * 15",
                "at second 15 of minute 30 past hour 2, every day",
            ),
            (
                "* * * * * */10",
                "every 10th second of every minute, every day",
            ),
            (
                "0 0 */10 * *",
                "at minute 0 past hour 0, on every 10th day of the month",
            ),
            (
                "0 6 * */3 *",
                "at minute 0 past hour 6, every day, in every 3rd month",
            ),
        ];
        for (expr, want) in cases {
            assert_eq!(words(expr), want, "{expr}");
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn cron(expr: &str) -> Schedule {
        Schedule::Cron(vec![CronExpr::parse(expr).expect("cron")])
    }

    #[test]
    fn a_fall_back_night_names_the_interval_rule_and_marks_both_passes() {
        let tz: Tz = "Europe/Amsterdam".parse().expect("zone");
        let e = explain(
            &cron("*/30 * * * *"),
            tz,
            t("2026-10-24T23:45:00Z"),
            5,
            &no_exclusions,
        );
        let at: Vec<_> = e.fires.iter().map(|f| f.utc).collect();
        assert_eq!(
            at,
            [
                t("2026-10-25T00:00:00Z"),
                t("2026-10-25T00:30:00Z"),
                t("2026-10-25T01:00:00Z"),
                t("2026-10-25T01:30:00Z"),
                t("2026-10-25T02:00:00Z"),
            ]
        );
        assert_eq!(e.transitions.len(), 1);
        let note = &e.transitions[0];
        assert_eq!(note.kind, TransitionKind::FallBack);
        assert!(note.note.contains("interval rule"), "{}", note.note);
        assert!(
            note.note.contains("02:00 and 02:30 happen twice"),
            "{}",
            note.note
        );
        assert_eq!(note.clock_before, "2026-10-25 03:00 CEST");
        assert_eq!(note.clock_after, "02:00 CET");
        assert!(e.fires[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("first pass")));
        assert!(e.fires[2]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("second pass")));
        assert_eq!(e.fires[4].note, None);
        assert_eq!(e.rules[0].rule, DstRule::Interval);
    }

    #[test]
    fn a_skipped_fixed_time_says_it_fires_after_the_gap() {
        let tz: Tz = "America/New_York".parse().expect("zone");
        let e = explain(
            &cron("30 2 * * *"),
            tz,
            t("2026-03-07T12:00:00Z"),
            2,
            &no_exclusions,
        );
        assert_eq!(e.fires[0].utc, t("2026-03-08T07:00:00Z"));
        let note = e.fires[0].note.as_deref().expect("a note");
        assert!(
            note.contains("for 02:30, which does not exist on 2026-03-08"),
            "{note}"
        );
        assert!(note.contains("fixed-time rule"), "{note}");
        assert_eq!(e.fires[1].note, None);
        let transition = &e.transitions[0].note;
        assert!(transition.contains("02:30 does not exist"), "{transition}");
        assert!(
            transition.contains("03:00 EDT (2026-03-08T07:00:00Z)"),
            "{transition}"
        );
        assert!(e.words[0].ends_with(", America/New_York"));
    }

    #[test]
    fn excluded_slots_are_shown_with_their_calendar() {
        let tz: Tz = "UTC".parse().expect("zone");
        let holiday = t("2026-12-25T09:00:00Z");
        let excluded = |at: DateTime<Utc>| (at == holiday).then(|| "nl-holidays".to_string());
        let e = explain(
            &cron("0 9 * * *"),
            tz,
            t("2026-12-24T12:00:00Z"),
            2,
            &excluded,
        );
        assert_eq!(e.fires[0].skipped_by.as_deref(), Some("nl-holidays"));
        assert_eq!(e.fires[1].skipped_by, None);
        assert!(e.to_string().contains("skipped: calendar nl-holidays"));
        assert!(e.transitions.is_empty());
    }

    #[test]
    fn intervals_one_shots_and_several_lines_are_explained() {
        let tz: Tz = "Europe/Amsterdam".parse().expect("zone");
        let every = explain(
            &Schedule::Interval(std::time::Duration::from_secs(5400)),
            tz,
            t("2026-01-01T00:00:00Z"),
            5,
            &no_exclusions,
        );
        assert_eq!(
            every.words,
            ["every 1h 30m, counted from the end of the previous run (the first run at once)"]
        );
        assert!(every.fires.is_empty() && every.rules.is_empty());
        assert!(every.notes[0].contains("real time"));
        let once = explain(
            &Schedule::At(t("2026-12-24T05:00:00Z")),
            tz,
            t("2026-01-01T00:00:00Z"),
            5,
            &no_exclusions,
        );
        assert_eq!(
            once.words,
            ["once, at 2026-12-24 06:00 CET (2026-12-24T05:00:00Z)"]
        );
        assert_eq!(once.fires.len(), 1);
        // Two lines: words and a rule for each; 02:30 (missing) and 03:00 share one fire.
        let both = Schedule::Cron(vec![
            CronExpr::parse("30 2 * * *").expect("cron"),
            CronExpr::parse("0 3 * * *").expect("cron"),
        ]);
        let e = explain(&both, tz, t("2026-03-28T12:00:00Z"), 2, &no_exclusions);
        assert_eq!(e.schedule, "30 2 * * * | 0 3 * * *");
        assert_eq!(e.words.len(), 2);
        assert_eq!(e.rules.len(), 2);
        assert_eq!(e.fires[0].utc, t("2026-03-29T01:00:00Z"));
        let note = e.fires[0].note.as_deref().expect("note");
        assert!(
            note.contains("`30 2 * * *` fires once right after the gap"),
            "{note}"
        );
        assert!(!note.contains("`0 3 * * *`"), "{note}");
        let transition = &e.transitions[0].note;
        assert!(
            transition.contains("`0 3 * * *` has no fire time in them"),
            "{transition}"
        );
    }
}
