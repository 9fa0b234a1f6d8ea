//! Calendars across a year: which slots a job's `skip_on`/`only_on` calendars exclude.
//!
//! Expected values are worked out by hand, not by this code: 2026 begins on a Thursday, so it
//! has 52 × 5 + 1 = 261 weekdays. Dutch public holidays of 2026 (Easter is April 5): New Year
//! (Thu 1 Jan), Easter Monday (Mon 6 Apr), King's Day (Mon 27 Apr), Liberation Day (Tue 5 May),
//! Ascension (Easter + 39: Thu 14 May), Whit Monday (Easter + 50: Mon 25 May), Christmas (Fri 25
//! and Sat 26 Dec): 7 of them on weekdays. Europe/Amsterdam is UTC+1 in winter and UTC+2 from
//! 2026-03-29 01:00Z to 2026-10-25 01:00Z; America/New_York is UTC−5 in December.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use sisyphus_model::calendar::{Calendar, CalendarFormat, CalendarSet, Exclusion};
use sisyphus_model::{CronExpr, Schedule};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}

fn zone(name: &str) -> Tz {
    name.parse().expect("zone")
}

fn cron(line: &str) -> Schedule {
    Schedule::Cron(vec![CronExpr::parse(line).expect("cron")])
}

const NL_HOLIDAYS: &str = "BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//nl-holidays//EN\r
X-WR-CALNAME:Nederlandse feestdagen\r
X-WR-TIMEZONE:Europe/Amsterdam\r
BEGIN:VEVENT\r
UID:nieuwjaar\r
SUMMARY:Nieuwjaarsdag\r
DTSTART;VALUE=DATE:20200101\r
RRULE:FREQ=YEARLY\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:pasen\r
SUMMARY:Tweede paasdag\r
DTSTART;VALUE=DATE:20260406\r
DTEND;VALUE=DATE:20260407\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:koningsdag\r
SUMMARY:Koningsdag\r
DTSTART;VALUE=DATE:20260427\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:bevrijding\r
SUMMARY:Bevrijdingsdag\r
DTSTART;VALUE=DATE:20260505\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:hemelvaart\r
SUMMARY:Hemelvaartsdag\r
DTSTART;VALUE=DATE:20260514\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:pinksteren\r
SUMMARY:Tweede pinksterdag\r
DTSTART;VALUE=DATE:20260525\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:kerst\r
SUMMARY:Eerste en tweede\r
  kerstdag\r
DTSTART;VALUE=DATE:20251225\r
DURATION:P2D\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:kerst-herhaald-1\r
SUMMARY:Kerst\r
DTSTART;VALUE=DATE:20261225\r
RRULE:FREQ=YEARLY;COUNT=2\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:kerst-herhaald-2\r
SUMMARY:Tweede kerstdag\r
DTSTART;VALUE=DATE:20261226\r
RRULE:FREQ=YEARLY;UNTIL=20271226\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:afgelast\r
SUMMARY:Cancelled\r
STATUS:CANCELLED\r
DTSTART;VALUE=DATE:20260601\r
END:VEVENT\r
END:VCALENDAR\r
";

const BUSINESS_DAYS: &str = r#"
zone = "Europe/Amsterdam"
description = "Monday to Friday"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
"#;

fn holidays() -> Arc<Calendar> {
    Arc::new(
        Calendar::parse("nl-holidays", CalendarFormat::Ics, NL_HOLIDAYS, None)
            .expect("the holidays read"),
    )
}

fn business_days() -> Arc<Calendar> {
    Arc::new(
        Calendar::parse("business-days", CalendarFormat::Toml, BUSINESS_DAYS, None)
            .expect("the business days read"),
    )
}

/// Every slot of `schedule` in [from, to), each with its exclusion: slot by slot.
fn slots(
    set: &CalendarSet,
    schedule: &Schedule,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Option<String>)> {
    let mut out = Vec::new();
    let mut cursor = from - chrono::Duration::microseconds(1);
    while let Some(slot) = schedule.next_after(cursor, tz).filter(|s| *s < to) {
        out.push((slot, set.excluded_by(slot).map(|e| e.to_string())));
        cursor = slot;
    }
    out
}

/// The allowed slots found by jumping over excluded stretches (`next_slot`).
fn allowed_by_jumps(
    set: &CalendarSet,
    schedule: &Schedule,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut cursor = from - chrono::Duration::microseconds(1);
    let last = to - chrono::Duration::microseconds(1);
    while let Some(slot) = set.next_slot(schedule, tz, cursor, last) {
        out.push(slot);
        cursor = slot;
    }
    out
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

#[test]
fn a_year_of_business_days_without_holidays() {
    let ams = zone("Europe/Amsterdam");
    let set = CalendarSet::new(vec![holidays()], vec![business_days()]);
    let schedule = cron("0 9 * * *");
    let (from, to) = (
        t("2026-01-01T00:00:00+01:00"),
        t("2027-01-01T00:00:00+01:00"),
    );
    let all = slots(&set, &schedule, ams, from, to);
    assert_eq!(all.len(), 365);
    let allowed: Vec<DateTime<Utc>> = all
        .iter()
        .filter(|(_, e)| e.is_none())
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(allowed.len(), 261 - 7);
    assert_eq!(allowed_by_jumps(&set, &schedule, ams, from, to), allowed);
    // The holidays are skipped naming the holiday calendar, weekends naming the business days.
    let skipped_holidays: Vec<NaiveDate> = all
        .iter()
        .filter(|(_, e)| e.as_deref().is_some_and(|e| e.contains("`nl-holidays`")))
        .map(|(s, _)| s.with_timezone(&ams).date_naive())
        .collect();
    let expected: Vec<NaiveDate> = [
        "2026-01-01",
        "2026-04-06",
        "2026-04-27",
        "2026-05-05",
        "2026-05-14",
        "2026-05-25",
        "2026-12-25",
        "2026-12-26",
    ]
    .iter()
    .map(|d| date(d))
    .collect();
    assert_eq!(skipped_holidays, expected);
    let weekend = all
        .iter()
        .filter(|(_, e)| e.as_deref().is_some_and(|e| e.contains("`business-days`")))
        .count();
    // 104 weekend days (52 weeks: Jan 1 is a Thursday, Dec 31 too), less Sat 26 Dec, which the
    // holiday calendar (skip_on, looked at first) names.
    assert_eq!(weekend, 104 - 1);
    // A slot at 09:00 local on 27 April: skipped, by name.
    let kings_day = t("2026-04-27T09:00:00+02:00");
    assert_eq!(
        set.excluded_by(kings_day).map(|e| e.calendar().to_string()),
        Some("nl-holidays".to_string())
    );
    assert_eq!(
        set.excluding_calendar(t("2026-04-25T09:00:00+02:00")),
        Some("business-days".to_string())
    );
}

#[test]
fn yearly_rules_keep_their_bounds() {
    let ams = zone("Europe/Amsterdam");
    let set = CalendarSet::new(vec![holidays()], vec![]);
    let excluded = |s: &str| set.excluded_by(t(s)).is_some();
    // New Year from 2020 on, for ever.
    assert!(excluded("2031-01-01T12:00:00+01:00"));
    assert!(!excluded("2019-01-01T12:00:00+01:00"));
    // The 2025 Christmas event (two days), and the 2026 rules: 25 Dec twice (COUNT=2), 26 Dec
    // until 2027.
    assert!(excluded("2025-12-26T12:00:00+01:00"));
    assert!(excluded("2027-12-25T12:00:00+01:00"));
    assert!(excluded("2027-12-26T12:00:00+01:00"));
    assert!(!excluded("2028-12-25T12:00:00+01:00"));
    assert!(!excluded("2028-12-26T12:00:00+01:00"));
    // A cancelled event excludes nothing.
    assert!(!excluded("2026-06-01T12:00:00+02:00"));
    // Day boundaries are Amsterdam's: 23:30Z on 31 Dec 2026 is 00:30 on New Year's Day there.
    assert!(excluded("2026-12-31T23:30:00Z"));
    assert!(!excluded("2026-01-01T23:30:00Z"));
    let _ = ams;
}

#[test]
fn a_freeze_window_in_another_zone_than_the_job() {
    // The freeze is New York's 21 December to 1 January; the job runs at 02:00 in Amsterdam,
    // which is 20:00 the day before in New York.
    let freeze = Calendar::parse(
        "freeze-2026",
        CalendarFormat::Toml,
        r#"
        zone = "America/New_York"
        ranges = [{ from = 2026-12-21, to = 2027-01-01 }]
        "#,
        None,
    )
    .expect("the freeze reads");
    let set = CalendarSet::new(vec![Arc::new(freeze)], vec![]);
    let ams = zone("Europe/Amsterdam");
    let schedule = cron("0 2 * * *");
    let all = slots(
        &set,
        &schedule,
        ams,
        t("2026-12-15T00:00:00Z"),
        t("2027-01-10T00:00:00Z"),
    );
    let skipped: Vec<NaiveDate> = all
        .iter()
        .filter(|(_, e)| e.is_some())
        .map(|(s, _)| s.with_timezone(&ams).date_naive())
        .collect();
    // Amsterdam dates whose 02:00 (01:00Z, 20:00 New York the day before) falls on New York's
    // 21 Dec … 1 Jan: 22 Dec … 2 Jan.
    let expected: Vec<NaiveDate> = date("2026-12-22")
        .iter_days()
        .take_while(|d| *d <= date("2027-01-02"))
        .collect();
    assert_eq!(skipped, expected);
    assert!(all
        .iter()
        .filter_map(|(_, e)| e.as_deref())
        .all(|e| e == "skip_on calendar `freeze-2026` contains the slot"));
    let allowed: Vec<_> = all
        .iter()
        .filter(|(_, e)| e.is_none())
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(
        allowed_by_jumps(
            &set,
            &schedule,
            ams,
            t("2026-12-15T00:00:00Z"),
            t("2027-01-10T00:00:00Z")
        ),
        allowed
    );
}

#[test]
fn a_timed_range_in_its_own_zone() {
    // A maintenance window, 22:00 to 06:00 Tokyo time (13:00Z to 21:00Z), given as local times.
    let window = Calendar::parse(
        "tokyo-maintenance",
        CalendarFormat::Toml,
        r#"
        zone = "Asia/Tokyo"
        ranges = [{ from = 2026-07-01T22:00:00, to = 2026-07-02T06:00:00 }]
        "#,
        None,
    )
    .expect("reads");
    let set = CalendarSet::new(vec![Arc::new(window)], vec![]);
    let schedule = cron("0 * * * *");
    let all = slots(
        &set,
        &schedule,
        Tz::UTC,
        t("2026-07-01T00:00:00Z"),
        t("2026-07-02T00:00:00Z"),
    );
    let skipped: Vec<u32> = all
        .iter()
        .filter(|(_, e)| e.is_some())
        .map(|(s, _)| chrono::Timelike::hour(s))
        .collect();
    assert_eq!(skipped, (13..21).collect::<Vec<u32>>());
}

#[test]
fn a_dst_day_is_23_or_25_hours_long() {
    // Whole days of an Amsterdam calendar, an hourly job in UTC.
    let days = Calendar::parse(
        "dst-days",
        CalendarFormat::Toml,
        r#"
        zone = "Europe/Amsterdam"
        days = [2026-03-29, 2026-10-25]
        "#,
        None,
    )
    .expect("reads");
    let set = CalendarSet::new(vec![Arc::new(days)], vec![]);
    let schedule = cron("0 * * * *");
    let count = |from: &str, to: &str| {
        slots(&set, &schedule, Tz::UTC, t(from), t(to))
            .iter()
            .filter(|(_, e)| e.is_some())
            .map(|(s, _)| *s)
            .collect::<Vec<_>>()
    };
    // 29 March: from 28 Mar 23:00Z (midnight CET) to 29 Mar 22:00Z (midnight CEST): 23 hours.
    let spring = count("2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z");
    assert_eq!(spring.len(), 23);
    assert_eq!(spring.first(), Some(&t("2026-03-28T23:00:00Z")));
    assert_eq!(spring.last(), Some(&t("2026-03-29T21:00:00Z")));
    // 25 October: from 24 Oct 22:00Z (midnight CEST) to 25 Oct 23:00Z (midnight CET): 25 hours.
    let autumn = count("2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z");
    assert_eq!(autumn.len(), 25);
    assert_eq!(autumn.first(), Some(&t("2026-10-24T22:00:00Z")));
    assert_eq!(autumn.last(), Some(&t("2026-10-25T22:00:00Z")));
}

#[test]
fn calendars_that_exclude_everything_are_found() {
    let ams = zone("Europe/Amsterdam");
    let weekends = Arc::new(
        Calendar::parse(
            "weekends",
            CalendarFormat::Toml,
            "zone = \"Europe/Amsterdam\"\nweekdays = [\"sat\", \"sun\"]\n",
            None,
        )
        .expect("reads"),
    );
    let from = t("2026-01-01T00:00:00Z");
    // Skipping business days and weekends: nothing is left.
    let none = CalendarSet::new(vec![business_days(), weekends.clone()], vec![]);
    assert!(!none.leaves_a_slot(&cron("*/5 * * * *"), ams, from));
    // A Monday-only job that runs only on weekends: nothing either.
    let monday = CalendarSet::new(vec![], vec![weekends.clone()]);
    assert!(!monday.leaves_a_slot(&cron("0 9 * * mon"), ams, from));
    assert!(monday.leaves_a_slot(&cron("0 9 * * sat"), ams, from));
    // The same calendar in both keys.
    let both = CalendarSet::new(vec![weekends.clone()], vec![weekends]);
    assert!(!both.leaves_a_slot(&cron("0 9 * * *"), ams, from));
    // A one-shot job on a holiday.
    let holiday = CalendarSet::new(vec![holidays()], vec![]);
    assert!(!holiday.leaves_a_slot(&Schedule::At(t("2026-04-27T10:00:00Z")), ams, from));
    assert!(holiday.leaves_a_slot(&Schedule::At(t("2026-04-28T10:00:00Z")), ams, from));
    // An interval job needs one allowed instant.
    let every = Schedule::Interval(std::time::Duration::from_secs(60));
    assert!(holiday.leaves_a_slot(&every, ams, from));
    // A rule with an end leaves slots after it; a freeze that ends does too.
    let next = holiday
        .next_slot(&cron("0 9 1 1 *"), ams, from, t("2040-01-01T00:00:00Z"))
        .map(|s| s.with_timezone(&ams).date_naive());
    assert_eq!(next, None, "New Year is a holiday every year from 2020 on");
    let next = holiday
        .next_slot(&cron("0 9 25 12 *"), ams, from, t("2040-01-01T00:00:00Z"))
        .map(|s| s.with_timezone(&ams).date_naive());
    assert_eq!(next, Some(date("2028-12-25")));
}

#[test]
fn only_on_names_every_calendar_it_lacks() {
    let weekends = Arc::new(
        Calendar::parse(
            "weekends",
            CalendarFormat::Toml,
            "zone = \"UTC\"\nweekdays = [\"sat\", \"sun\"]\n",
            None,
        )
        .expect("reads"),
    );
    let set = CalendarSet::new(vec![], vec![weekends, holidays()]);
    let monday = t("2026-03-02T12:00:00Z");
    assert_eq!(monday.weekday(), chrono::Weekday::Mon);
    let e = set.excluded_by(monday).expect("excluded");
    assert_eq!(e, Exclusion::OnlyOn(vec!["weekends", "nl-holidays"]));
    assert_eq!(
        e.to_string(),
        "only_on calendar `weekends` or `nl-holidays` does not contain the slot"
    );
    assert_eq!(e.calendar(), "weekends");
}

#[test]
fn bad_files_name_the_line() {
    let err = |text: &str| {
        Calendar::parse("x", CalendarFormat::Ics, text, Some(Tz::UTC))
            .expect_err("refused")
            .to_string()
    };
    let begin = "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\n";
    let end = "END:VEVENT\nEND:VCALENDAR\n";
    let e = err(&format!(
        "{begin}DTSTART;VALUE=DATE:20260101\nthis is garbage\n{end}"
    ));
    assert!(
        e.starts_with("line 5: `this is garbage` is not a content line"),
        "{e}"
    );
    let e = err(&format!("{begin}DTSTART;VALUE=DATE:2026-01-01\n{end}"));
    assert!(
        e.starts_with("line 4: DTSTART: `2026-01-01` is not a date"),
        "{e}"
    );
    let e = err(&format!(
        "{begin}DTSTART;VALUE=DATE:20260101\nRRULE:FREQ=MONTHLY\n{end}"
    ));
    assert!(
        e.starts_with("line 5: RRULE: `FREQ=MONTHLY`: FREQ=MONTHLY is not supported"),
        "{e}"
    );
    let e = err(&format!(
        "{begin}DTSTART;VALUE=DATE:20260101\nRRULE:FREQ=YEARLY;BYDAY=1MO\n{end}"
    ));
    assert!(e.starts_with("line 5: RRULE:"), "{e}");
    let e = err(&format!(
        "{begin}DTSTART;VALUE=DATE:20260101\nEXDATE;VALUE=DATE:20270101\n{end}"
    ));
    assert!(e.starts_with("line 5: EXDATE: is not supported"), "{e}");
    let e = err(&format!(
        "{begin}DTSTART;TZID=W. Europe Standard Time:20260101T100000\nDURATION:PT1H\n{end}"
    ));
    assert!(
        e.starts_with("line 4: DTSTART: TZID `W. Europe Standard Time`"),
        "{e}"
    );
    let e = err(&format!("{begin}DTSTART:20260101T100000Z\n{end}"));
    assert!(
        e.starts_with("line 4: DTSTART: a timed event needs DTEND or DURATION"),
        "{e}"
    );
    let e = err(&format!(
        "{begin}DTSTART;VALUE=DATE:20260101\nEND:VCALENDAR\n"
    ));
    assert!(
        e.starts_with("line 5: END:VCALENDAR closes BEGIN:VEVENT of line 3"),
        "{e}"
    );
    let e = err(&format!("{begin}DTSTART;VALUE=DATE:20260101\nEND:VEVENT\n"));
    assert!(
        e.starts_with("line 1: BEGIN:VCALENDAR is never closed"),
        "{e}"
    );
    let e = err("just some text\n");
    assert!(
        e.starts_with("line 1: `just some text` is not a content line"),
        "{e}"
    );
    // Folded lines count as the lines of the file.
    let e = err(&format!(
        "{begin}SUMMARY:a long\n  title\nDTSTART;VALUE=DATE:20261301\n{end}"
    ));
    assert!(e.starts_with("line 6: DTSTART:"), "{e}");
    // No zone anywhere.
    let e = Calendar::parse(
        "x",
        CalendarFormat::Ics,
        &format!("{begin}DTSTART;VALUE=DATE:20260101\n{end}"),
        None,
    )
    .expect_err("refused")
    .to_string();
    assert!(e.contains("--zone"), "{e}");

    let toml_err = |text: &str| {
        Calendar::parse("x", CalendarFormat::Toml, text, None)
            .expect_err("refused")
            .to_string()
    };
    let e = toml_err("zone = \"Europe/Amsterdam\"\ndays = [2026-01-01,\n  \"someday\"]\n");
    assert!(e.contains("days: \"someday\" is not a date"), "{e}");
    let e = toml_err("zone = \"Europe/Amsterdam\"\n\nholidays = [2026-01-01]\n");
    assert!(e.starts_with("line 3:") && e.contains("holidays"), "{e}");
    let e = toml_err("zone = \"Mars/Olympus\"\n");
    assert!(e.contains("unknown time zone `Mars/Olympus`"), "{e}");
    let e = toml_err("days = [2026-01-01]\n");
    assert!(e.contains("no zone"), "{e}");
    let e = toml_err("zone = \"UTC\"\nranges = [{ from = 2026-01-05, to = 2026-01-01 }]\n");
    assert!(e.contains("`to` is before `from`"), "{e}");
    let e = toml_err("zone = \"UTC\"\nyearly = [\"02-30\"]\n");
    assert!(e.contains("yearly: `02-30`"), "{e}");
    let bad_name = Calendar::parse("no spaces", CalendarFormat::Toml, "zone = \"UTC\"", None)
        .expect_err("refused")
        .to_string();
    assert!(bad_name.contains("calendar name `no spaces`"), "{bad_name}");
}
