//! Cron expressions: parsing and "next fire time" in a time zone.
//!
//! Two shapes are accepted (see ARCHITECTURE.md, "Cron semantics"):
//! - 5 fields, crontab's: `minute hour day-of-month month day-of-week`;
//! - 6 fields, Sisy's/croniter's: the same with `second` **last**.
//!
//! Each field takes `*`, `*/x`, `x`, `x-y`, `x-y/z`, `x/z` and comma lists of those; month and
//! day-of-week take English names (`jan`–`dec`, `mon`–`sun`, any case); day-of-week 0 and 7 are both
//! Sunday; day-of-month takes `L` for the last day of the month.
//!
//! When both day-of-month and day-of-week are restricted (anything but a bare `*`), a day matches
//! if either matches — crontab's rule. A stepped star such as `*/2` counts as restricted, as it does
//! in croniter (Sisy's library); Vixie cron treats it as a star.
//!
//! Evaluation happens on the wall clock of the job's zone. Across a DST transition an expression
//! follows one of two rules, chosen by its shape ([`DstRule`], Vixie cron's):
//! - **interval rule**, for expressions with a `*`, a step or a range in the second, minute or
//!   hour field (`*/15 * * * *`, `0 * * * *`, `0 9-17 * * *`): they keep their rhythm in real time.
//!   An instant fires when its wall-clock reading matches, so a repeated local hour (fall back)
//!   fires in both passes and local times that do not exist (spring forward) do not fire;
//! - **fixed-time rule**, for expressions whose second, minute and hour fields are fixed numbers
//!   or lists of them (`30 2 * * *`, `0 6,18 * * *`): a local time that does not exist fires
//!   once, at the first instant after the gap (several such times in one gap fire once together);
//!   a local time that happens twice fires once, at its first occurrence.
//!
//! Why hand-written: the `cron` crate reads seconds first and has no `L` on its own terms, and
//! neither it nor `croner` names the offending field in its errors, which invariant `refused-before-written` asks for.

use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;
use serde::Serialize;

use super::zone;

/// How far ahead `next_after` looks before it concludes an expression never fires again.
const SEARCH_YEARS: i32 = 30;

/// A parsed cron expression. Construct with [`CronExpr::parse`]; it is the only way in.
#[derive(Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
    seconds: u64,
    minutes: u64,
    hours: u32,
    /// Bits 1..=31.
    days_of_month: u32,
    last_day_of_month: bool,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    days_of_week: u8,
    dom_restricted: bool,
    dow_restricted: bool,
    /// Second, minute and hour are fixed numbers or lists of them: the fixed-time rule.
    fixed_time: bool,
}

/// How an expression meets a DST transition (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DstRule {
    /// A `*`, a step or a range in the second, minute or hour field: fires whenever the wall
    /// clock reads a matching time — twice in a repeated hour, never in a skipped one.
    Interval,
    /// Only fixed numbers (or lists of them) in the second, minute and hour fields: a skipped
    /// time fires once right after the gap, a repeated one once, the first time.
    FixedTime,
}

impl DstRule {
    /// The rule's name, as `--explain` says it.
    pub fn name(self) -> &'static str {
        match self {
            DstRule::Interval => "interval rule",
            DstRule::FixedTime => "fixed-time rule",
        }
    }

    /// What the rule does, in one sentence.
    pub fn summary(self) -> &'static str {
        match self {
            DstRule::Interval => {
                "keeps its rhythm in real time (Vixie cron's rule for `*`, steps and ranges in \
                 the minute or hour field): a repeated local hour fires in both passes, local \
                 times that do not exist do not fire"
            }
            DstRule::FixedTime => {
                "fires at fixed local times (Vixie cron's rule for fixed minute and hour): a \
                 local time that does not exist fires once right after the gap, a repeated one \
                 fires once, the first time"
            }
        }
    }
}

/// A cron expression that could not be parsed; names the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} field `{text}`: {problem}")]
pub struct CronError {
    /// `minute`, `hour`, `day-of-month`, `month`, `day-of-week`, `second`, or `expression`.
    pub field: &'static str,
    /// The text of that field (the whole expression for `expression`).
    pub text: String,
    /// What is wrong.
    pub problem: String,
}

#[derive(Clone, Copy)]
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: FieldSpec = FieldSpec {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// One parsed field: a bit set of allowed values, whether it held `L`, whether it was a bare `*`,
/// whether it was only numbers (no `*`, step or range).
struct Field {
    bits: u64,
    last: bool,
    star: bool,
    fixed: bool,
}

impl CronExpr {
    /// Parses a 5- or 6-field expression (seconds last in the 6-field form).
    pub fn parse(source: &str) -> Result<CronExpr, CronError> {
        let fields: Vec<&str> = source.split_whitespace().collect();
        let (minute, hour, dom, month, dow, second) = match fields.as_slice() {
            [mi, h, d, mo, w] => (*mi, *h, *d, *mo, *w, "0"),
            [mi, h, d, mo, w, s] => (*mi, *h, *d, *mo, *w, *s),
            _ => {
                return Err(CronError {
                    field: "expression",
                    text: source.to_string(),
                    problem: format!(
                        "has {} fields; expected 5 (minute hour day-of-month month day-of-week) \
                         or 6 (the same, then second)",
                        fields.len()
                    ),
                })
            }
        };
        let dom = parse_field(dom, DAY_OF_MONTH, true)?;
        let mut dow_field = parse_field(dow, DAY_OF_WEEK, false)?;
        // 7 is Sunday too.
        if dow_field.bits & (1 << 7) != 0 {
            dow_field.bits = (dow_field.bits & !(1 << 7)) | 1;
        }
        let seconds = parse_field(second, SECOND, false)?;
        let minutes = parse_field(minute, MINUTE, false)?;
        let hours = parse_field(hour, HOUR, false)?;
        let expr = CronExpr {
            source: fields.join(" "),
            seconds: seconds.bits,
            minutes: minutes.bits,
            hours: hours.bits as u32,
            days_of_month: dom.bits as u32,
            last_day_of_month: dom.last,
            months: parse_field(month, MONTH, false)?.bits as u16,
            days_of_week: dow_field.bits as u8,
            dom_restricted: !dom.star,
            dow_restricted: !dow_field.star,
            fixed_time: seconds.fixed && minutes.fixed && hours.fixed,
        };
        expr.check_can_fire()?;
        Ok(expr)
    }

    /// The expression as written (fields separated by single spaces).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The fields as written: minute, hour, day-of-month, month, day-of-week, and the second
    /// when the expression has six.
    pub fn fields(&self) -> Vec<&str> {
        self.source.split(' ').collect()
    }

    /// How this expression meets a DST transition.
    pub fn dst_rule(&self) -> DstRule {
        if self.fixed_time {
            DstRule::FixedTime
        } else {
            DstRule::Interval
        }
    }

    /// Whether the wall-clock time `local` matches (date and time of day, to the second).
    pub fn matches_local(&self, local: NaiveDateTime) -> bool {
        let time = local.time();
        self.month_matches(local.date())
            && self.day_matches(local.date())
            && self.hours & (1 << time.hour()) != 0
            && self.minutes & (1 << time.minute()) != 0
            && self.seconds & (1 << time.second()) != 0
    }

    /// The first fire time strictly after `after`, evaluated on the wall clock of `tz` with the
    /// expression's [`DstRule`]. `None` if the expression does not fire in the next 30 years.
    /// Strictly increasing: every slot is a distinct instant, also the two passes of a repeated
    /// hour.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let limit = NaiveDate::from_ymd_opt(after.year().checked_add(SEARCH_YEARS)?, 1, 1)?;
        match self.dst_rule() {
            DstRule::FixedTime => self.next_fixed_time(after, tz, limit),
            DstRule::Interval => self.next_in_real_time(after, tz, limit),
        }
    }

    /// The fixed-time rule: walks matching wall-clock times and maps each to the instant it fires
    /// at (itself, the first occurrence in a fold, the end of a gap). That mapping never
    /// decreases and maps the wall-clock time of `after` to at most `after`, so every candidate
    /// that can fire after `after` lies strictly after it on the wall clock.
    fn next_fixed_time(
        &self,
        after: DateTime<Utc>,
        tz: Tz,
        limit: NaiveDate,
    ) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&tz).naive_local();
        let mut from = local.with_nanosecond(0)? + Duration::seconds(1);
        loop {
            let candidate = self.next_local_match(from, limit)?;
            let instant = resolve_local(tz, candidate);
            if instant > after {
                return Some(instant);
            }
            from = candidate + Duration::seconds(1);
        }
    }

    /// The interval rule: the first whole second after `after` whose wall-clock reading matches.
    /// Between two transitions the offset is fixed, so the wall clock there is the instant plus
    /// the offset; the search goes on from the next transition when the first match lies beyond it.
    fn next_in_real_time(
        &self,
        after: DateTime<Utc>,
        tz: Tz,
        limit: NaiveDate,
    ) -> Option<DateTime<Utc>> {
        let mut from = after.with_nanosecond(0)? + Duration::seconds(1);
        loop {
            let offset = zone::offset_at(tz, from);
            let local = self.next_local_match(from.naive_utc() + offset, limit)?;
            let candidate = (local - offset).and_utc();
            match zone::next_transition(tz, from, candidate) {
                None => return Some(candidate),
                Some(change) => from = change.at,
            }
        }
    }

    /// The first wall-clock time at or after `from` (a whole second) that matches, before the
    /// date `limit`.
    fn next_local_match(&self, from: NaiveDateTime, limit: NaiveDate) -> Option<NaiveDateTime> {
        let mut date = from.date();
        while date < limit {
            if !self.month_matches(date) {
                date = first_of_next_month(date)?;
                continue;
            }
            if self.day_matches(date) {
                let start = if date == from.date() {
                    from.time()
                } else {
                    NaiveTime::MIN
                };
                if let Some(time) = self.times_from(start).next() {
                    return Some(date.and_time(time));
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The next `count` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(count);
        let mut cursor = after;
        while out.len() < count {
            match self.next_after(cursor, tz) {
                Some(t) => {
                    out.push(t);
                    cursor = t;
                }
                None => break,
            }
        }
        out
    }

    fn month_matches(&self, date: NaiveDate) -> bool {
        self.months & (1 << date.month()) != 0
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.days_of_month & (1 << date.day()) != 0
            || (self.last_day_of_month && is_last_day_of_month(date));
        let dow = self.days_of_week & (1 << date.weekday().num_days_from_sunday()) != 0;
        match (self.dom_restricted, self.dow_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// Matching times of day at or after `from`, in order.
    fn times_from(&self, from: NaiveTime) -> impl Iterator<Item = NaiveTime> + '_ {
        let (fh, fm, fs) = (from.hour(), from.minute(), from.second());
        bits(self.hours as u64, 0, 23)
            .filter(move |&h| h >= fh)
            .flat_map(move |h| {
                bits(self.minutes, 0, 59)
                    .filter(move |&m| h > fh || m >= fm)
                    .flat_map(move |m| {
                        bits(self.seconds, 0, 59)
                            .filter(move |&s| h > fh || m > fm || s >= fs)
                            .filter_map(move |s| NaiveTime::from_hms_opt(h, m, s))
                    })
            })
    }

    /// Refuses expressions that can never fire, such as `0 0 30 2 *`.
    fn check_can_fire(&self) -> Result<(), CronError> {
        if self.dow_restricted && self.dom_restricted {
            return Ok(()); // Either matching is enough; some weekday always comes round.
        }
        if self.dom_restricted {
            let possible = (1..=12u32)
                .filter(|m| self.months & (1 << m) != 0)
                .any(|m| {
                    let days = days_in_month(m);
                    self.last_day_of_month || (1..=days).any(|d| self.days_of_month & (1 << d) != 0)
                });
            if !possible {
                return Err(CronError {
                    field: "day-of-month",
                    text: self.source.clone(),
                    problem: "no selected month has any of the selected days; it would never fire"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronExpr({:?})", self.source)
    }
}

/// The most days a month can have (February counts 29, so `29 2` stays valid).
fn days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn is_last_day_of_month(date: NaiveDate) -> bool {
    date.succ_opt()
        .is_some_and(|next| next.month() != date.month())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = if date.month() == 12 {
        (date.year() + 1, 1)
    } else {
        (date.year(), date.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
}

fn bits(set: u64, min: u32, max: u32) -> impl Iterator<Item = u32> {
    (min..=max).filter(move |v| set & (1 << v) != 0)
}

/// Maps a wall-clock time in `tz` to the instant it fires at: itself when it exists once, its
/// first occurrence in a fold, and the first instant after the gap when it does not exist.
fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => end_of_gap(tz, local),
    }
}

/// The first instant whose wall-clock time in `tz` is later than `local` (which lies in a gap).
/// Binary search over instants: UTC offsets lie within -12h..+14h, so the answer is in that window.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let naive_utc = local.and_utc();
    let mut lo = naive_utc - Duration::hours(15); // wall clock here is before `local`
    let mut hi = naive_utc + Duration::hours(13); // wall clock here is after `local`
    while hi - lo > Duration::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if mid.with_timezone(&tz).naive_local() > local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi.with_nanosecond(0).unwrap_or(hi)
}

fn parse_field(text: &str, spec: FieldSpec, allow_last: bool) -> Result<Field, CronError> {
    let err = |problem: String| CronError {
        field: spec.name,
        text: text.to_string(),
        problem,
    };
    let mut field = Field {
        bits: 0,
        last: false,
        star: text == "*" || text == "?",
        fixed: true,
    };
    for part in text.split(',') {
        if part.is_empty() {
            return Err(err("empty list element".into()));
        }
        if allow_last && part.eq_ignore_ascii_case("l") {
            field.last = true;
            continue;
        }
        if part.contains(['*', '?', '/', '-']) {
            field.fixed = false;
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| err(format!("step `{s}` is not a whole number")))?;
                if step == 0 {
                    return Err(err("step must be at least 1".into()));
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, spec).map_err(&err)?, value(b, spec).map_err(&err)?)
        } else {
            let v = value(range, spec).map_err(&err)?;
            // `5/15` means from 5 to the end in steps of 15, as in Vixie cron.
            (v, if part.contains('/') { spec.max } else { v })
        };
        // `sat-sun`: Sunday at the end of a range is 7.
        let hi = if spec.name == DAY_OF_WEEK.name && hi == 0 && lo > 0 {
            7
        } else {
            hi
        };
        if lo > hi {
            return Err(err(format!("range {range} runs backwards")));
        }
        let mut v = lo;
        while v <= hi {
            field.bits |= 1u64 << v;
            v += step;
        }
    }
    Ok(field)
}

/// The number a field's value stands for (`jan` → 1, `mon` → 1, `7` → 7), for explaining
/// expressions that parsed; `field` is a field name as in [`CronError::field`].
pub(super) fn field_value(field: &str, text: &str) -> Option<u32> {
    let spec = [SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK]
        .into_iter()
        .find(|s| s.name == field)?;
    value(text, spec).ok()
}

fn value(text: &str, spec: FieldSpec) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = spec.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + if spec.name == "month" { 1 } else { 0 });
    }
    if lower == "l" {
        return Err(format!(
            "`L` is allowed only in the day-of-month field, not in {}",
            spec.name
        ));
    }
    let v: u32 = text.parse().map_err(|_| {
        if spec.names.is_empty() {
            format!("`{text}` is not a number")
        } else {
            format!(
                "`{text}` is not a number or a name ({})",
                spec.names.join(", ")
            )
        }
    })?;
    if v < spec.min || v > spec.max {
        return Err(format!("{v} is out of range {}-{}", spec.min, spec.max));
    }
    Ok(v)
}
