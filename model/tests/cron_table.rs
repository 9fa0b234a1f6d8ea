//! The cron table: expressions × zones × start instants against expected fire times.
//!
//! Expected instants were worked out by hand from the tz database's transition times, not
//! produced by this code; the DST rows are checked independently by `cron_dst_check.py` (next to
//! this file), which applies each rule's definition by brute force with Python's `zoneinfo`:
//! `python3 model/tests/cron_dst_check.py`. Both DST rules are covered in each zone: the
//! interval rule (a `*`, step or range in the second, minute or hour field) and the fixed-time
//! rule (fixed numbers or lists of them); see ARCHITECTURE.md, "Cron semantics".

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sisyphus_model::{CronExpr, Schedule};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}

/// (expression, zone, start instant, the next fire times strictly after it)
const TABLE: &[(&str, &str, &str, &[&str])] = &[
    // Basics, UTC.
    (
        "* * * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"],
    ),
    (
        "* * * * *",
        "UTC",
        "2026-01-01T00:00:59.999Z",
        &["2026-01-01T00:01:00Z"],
    ),
    (
        "*/15 * * * *",
        "UTC",
        "2026-01-01T00:07:30Z",
        &[
            "2026-01-01T00:15:00Z",
            "2026-01-01T00:30:00Z",
            "2026-01-01T00:45:00Z",
            "2026-01-01T01:00:00Z",
        ],
    ),
    (
        "0 0 * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"],
    ),
    (
        "30 0 * * *",
        "UTC",
        "2026-01-01T00:29:59Z",
        &["2026-01-01T00:30:00Z", "2026-01-02T00:30:00Z"],
    ),
    (
        "0-10,15-20 * * * *",
        "UTC",
        "2026-01-01T00:09:00Z",
        &["2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z"],
    ),
    (
        "5/15 * * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:05:00Z",
            "2026-01-01T00:20:00Z",
            "2026-01-01T00:35:00Z",
            "2026-01-01T00:50:00Z",
            "2026-01-01T01:05:00Z",
        ],
    ),
    (
        "10-40/10 * * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:10:00Z",
            "2026-01-01T00:20:00Z",
            "2026-01-01T00:30:00Z",
            "2026-01-01T00:40:00Z",
            "2026-01-01T01:10:00Z",
        ],
    ),
    (
        "*/5 0,3,6,9 * * *",
        "UTC",
        "2026-01-01T00:55:00Z",
        &["2026-01-01T03:00:00Z"],
    ),
    (
        "59 23 31 12 *",
        "UTC",
        "2026-12-31T23:59:00Z",
        &["2027-12-31T23:59:00Z"],
    ),
    // Day and month names, any case; 0 and 7 both Sunday; ranges that end on Sunday.
    (
        "0 9-17 * * mon-fri",
        "UTC",
        "2026-11-20T16:30:00Z",
        &["2026-11-20T17:00:00Z", "2026-11-23T09:00:00Z"],
    ),
    (
        "0,15,30,45 9-17 * * MON-FRI",
        "UTC",
        "2026-11-20T17:40:00Z",
        &[
            "2026-11-20T17:45:00Z",
            "2026-11-23T09:00:00Z",
            "2026-11-23T09:15:00Z",
        ],
    ),
    (
        "0 0 * * 0",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"],
    ),
    (
        "0 0 * * 7",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"],
    ),
    (
        "0 0 * * sun",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-04T00:00:00Z"],
    ),
    (
        "0 0 * * sat-sun",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-03T00:00:00Z",
            "2026-01-04T00:00:00Z",
            "2026-01-10T00:00:00Z",
        ],
    ),
    (
        "0 0 * * 5-7",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-02T00:00:00Z",
            "2026-01-03T00:00:00Z",
            "2026-01-04T00:00:00Z",
            "2026-01-09T00:00:00Z",
        ],
    ),
    (
        "0 0 1 jan,jul *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"],
    ),
    (
        "0 0 1 Jun-Aug *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-06-01T00:00:00Z",
            "2026-07-01T00:00:00Z",
            "2026-08-01T00:00:00Z",
            "2027-06-01T00:00:00Z",
        ],
    ),
    (
        "0 12 * 2 *",
        "UTC",
        "2026-02-27T13:00:00Z",
        &["2026-02-28T12:00:00Z", "2027-02-01T12:00:00Z"],
    ),
    // Day-of-month and day-of-week both restricted: either matches (crontab's rule).
    (
        "0 0 13 * fri",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-02T00:00:00Z",
            "2026-01-09T00:00:00Z",
            "2026-01-13T00:00:00Z",
            "2026-01-16T00:00:00Z",
        ],
    ),
    (
        "0 0 29 2 mon",
        "UTC",
        "2026-02-01T00:00:00Z",
        &["2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"],
    ),
    (
        "0 0 */10 * mon",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-05T00:00:00Z",
            "2026-01-11T00:00:00Z",
            "2026-01-12T00:00:00Z",
        ],
    ),
    // L: the last day of the month, also in lists and lower case; 29 February.
    (
        "0 12 L * *",
        "UTC",
        "2026-01-15T00:00:00Z",
        &[
            "2026-01-31T12:00:00Z",
            "2026-02-28T12:00:00Z",
            "2026-03-31T12:00:00Z",
            "2026-04-30T12:00:00Z",
        ],
    ),
    (
        "0 12 L 2 *",
        "UTC",
        "2027-06-01T00:00:00Z",
        &["2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z"],
    ),
    (
        "0 0 1,L * *",
        "UTC",
        "2026-02-01T00:00:00Z",
        &[
            "2026-02-28T00:00:00Z",
            "2026-03-01T00:00:00Z",
            "2026-03-31T00:00:00Z",
        ],
    ),
    (
        "0 0 l * *",
        "UTC",
        "2026-04-01T00:00:00Z",
        &["2026-04-30T00:00:00Z"],
    ),
    (
        "0 0 29 2 *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
    ),
    (
        "0 0 29 2 *",
        "UTC",
        "2028-02-29T00:00:00Z",
        &["2032-02-29T00:00:00Z"],
    ),
    // Six fields: seconds last (Sisy's convention).
    (
        "* * * * * */10",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:00:10Z",
            "2026-01-01T00:00:20Z",
            "2026-01-01T00:00:30Z",
        ],
    ),
    (
        "30 2 * * * 15",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-01T02:30:15Z", "2026-01-02T02:30:15Z"],
    ),
    (
        "0 0 * * * 0,30",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-01T00:00:30Z", "2026-01-02T00:00:00Z"],
    ),
    (
        "0 * * * * 30",
        "UTC",
        "2026-01-01T00:00:31Z",
        &["2026-01-01T01:00:30Z"],
    ),
    // Fixed offsets and other zones.
    (
        "0 9 * * *",
        "Asia/Kolkata",
        "2026-01-01T00:00:00Z",
        &["2026-01-01T03:30:00Z", "2026-01-02T03:30:00Z"],
    ),
    (
        "0 0 1 * *",
        "Europe/Amsterdam",
        "2026-01-15T00:00:00Z",
        &[
            "2026-01-31T23:00:00Z",
            "2026-02-28T23:00:00Z",
            "2026-03-31T22:00:00Z",
        ],
    ),
    // DST rows (checked by cron_dst_check.py, which works them out with zoneinfo by brute force).
    // Europe/Amsterdam: 2026-03-29 01:00Z, 02:00 CET → 03:00 CEST (02:xx does not exist); 2026-10-25
    // 01:00Z, 03:00 CEST → 02:00 CET (02:xx happens twice).
    // Fixed-time rule: a missing time fires once at 03:00 CEST; a repeated one once, the first time.
    (
        "30 2 * * *",
        "Europe/Amsterdam",
        "2026-03-28T12:00:00Z",
        &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
    ),
    (
        "0 3 * * *",
        "Europe/Amsterdam",
        "2026-03-28T12:00:00Z",
        &["2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"],
    ),
    // A list of fixed numbers is fixed: 02:00 (missing) and 03:00 fire once together.
    (
        "0 2,3 * * *",
        "Europe/Amsterdam",
        "2026-03-28T12:00:00Z",
        &[
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:00:00Z",
            "2026-03-30T01:00:00Z",
        ],
    ),
    (
        "30 2 * * * 0,30",
        "Europe/Amsterdam",
        "2026-03-28T12:00:00Z",
        &[
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z",
            "2026-03-30T00:30:30Z",
        ],
    ),
    (
        "30 2 * * *",
        "Europe/Amsterdam",
        "2026-10-24T12:00:00Z",
        &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
    ),
    (
        "0 2,3 * * *",
        "Europe/Amsterdam",
        "2026-10-24T12:00:00Z",
        &[
            "2026-10-25T00:00:00Z",
            "2026-10-25T02:00:00Z",
            "2026-10-26T01:00:00Z",
        ],
    ),
    (
        "30 2 * * * 0,30",
        "Europe/Amsterdam",
        "2026-10-24T12:00:00Z",
        &[
            "2026-10-25T00:30:00Z",
            "2026-10-25T00:30:30Z",
            "2026-10-26T01:30:00Z",
        ],
    ),
    // Starting inside the first pass: the second pass does not fire again.
    (
        "0,20,40 2 * * *",
        "Europe/Amsterdam",
        "2026-10-25T00:50:00Z",
        &["2026-10-26T01:00:00Z", "2026-10-26T01:20:00Z"],
    ),
    // Interval rule: nothing fires in the gap; the repeated hour fires in both passes.
    (
        "*/15 2 * * *",
        "Europe/Amsterdam",
        "2026-03-29T00:00:00Z",
        &["2026-03-30T00:00:00Z", "2026-03-30T00:15:00Z"],
    ),
    (
        "30 * * * *",
        "Europe/Amsterdam",
        "2026-03-29T00:00:00Z",
        &["2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"],
    ),
    (
        "0 1-3 * * *",
        "Europe/Amsterdam",
        "2026-03-28T22:00:00Z",
        &[
            "2026-03-29T00:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-29T23:00:00Z",
        ],
    ),
    // Every second of 02:xx: none of the 3,600 missing seconds fires.
    (
        "* 2 * * * *",
        "Europe/Amsterdam",
        "2026-03-29T00:59:58Z",
        &[
            "2026-03-30T00:00:00Z",
            "2026-03-30T00:00:01Z",
            "2026-03-30T00:00:02Z",
        ],
    ),
    (
        "*/30 * * * *",
        "Europe/Amsterdam",
        "2026-10-24T23:45:00Z",
        &[
            "2026-10-25T00:00:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T01:30:00Z",
            "2026-10-25T02:00:00Z",
        ],
    ),
    (
        "*/30 * * * *",
        "Europe/Amsterdam",
        "2026-10-25T01:10:00Z",
        &["2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"],
    ),
    (
        "0 1-3 * * *",
        "Europe/Amsterdam",
        "2026-10-24T22:00:00Z",
        &[
            "2026-10-24T23:00:00Z",
            "2026-10-25T00:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-10-25T02:00:00Z",
        ],
    ),
    // A step in the seconds field makes a 6-field expression interval-like too.
    (
        "30 2 * * * */20",
        "Europe/Amsterdam",
        "2026-10-24T12:00:00Z",
        &[
            "2026-10-25T00:30:00Z",
            "2026-10-25T00:30:20Z",
            "2026-10-25T00:30:40Z",
            "2026-10-25T01:30:00Z",
            "2026-10-25T01:30:20Z",
            "2026-10-25T01:30:40Z",
            "2026-10-26T01:30:00Z",
        ],
    ),
    // Starting inside the first pass: the second pass still comes.
    (
        "*/20 2 * * *",
        "Europe/Amsterdam",
        "2026-10-25T00:50:00Z",
        &[
            "2026-10-25T01:00:00Z",
            "2026-10-25T01:20:00Z",
            "2026-10-25T01:40:00Z",
            "2026-10-26T01:00:00Z",
        ],
    ),
    // America/New_York: 2026-03-08 07:00Z, 02:00 EST → 03:00 EDT; 2026-11-01 06:00Z, 02:00 EDT →
    // 01:00 EST.
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00Z",
        &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
    ),
    (
        "0 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00Z",
        &["2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
    ),
    (
        "0 * * * *",
        "America/New_York",
        "2026-11-01T04:30:00Z",
        &[
            "2026-11-01T05:00:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T07:00:00Z",
        ],
    ),
    (
        "*/30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        &[
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-02T06:00:00Z",
        ],
    ),
    (
        "*/30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00Z",
        &["2026-03-09T06:00:00Z", "2026-03-09T06:30:00Z"],
    ),
    (
        "0 * * * *",
        "America/New_York",
        "2026-03-08T05:30:00Z",
        &[
            "2026-03-08T06:00:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T08:00:00Z",
        ],
    ),
    // Australia/Sydney (southern hemisphere): 2026-04-04 16:00Z, 03:00 AEDT → 02:00 AEST on 04-05;
    // 2026-10-03 16:00Z, 02:00 AEST → 03:00 AEDT on 10-04.
    (
        "30 2 * * *",
        "Australia/Sydney",
        "2026-04-04T12:00:00Z",
        &["2026-04-04T15:30:00Z", "2026-04-05T16:30:00Z"],
    ),
    (
        "20,40 2 * * *",
        "Australia/Sydney",
        "2026-10-03T12:00:00Z",
        &[
            "2026-10-03T16:00:00Z",
            "2026-10-04T15:20:00Z",
            "2026-10-04T15:40:00Z",
        ],
    ),
    (
        "0 * * * *",
        "Australia/Sydney",
        "2026-04-04T14:30:00Z",
        &[
            "2026-04-04T15:00:00Z",
            "2026-04-04T16:00:00Z",
            "2026-04-04T17:00:00Z",
        ],
    ),
    (
        "*/20 2 * * *",
        "Australia/Sydney",
        "2026-10-03T12:00:00Z",
        &["2026-10-04T15:00:00Z", "2026-10-04T15:20:00Z"],
    ),
    // Australia/Lord_Howe, a 30-minute shift: 2026-04-04 15:00Z, 02:00 +11 → 01:30 +10:30 on 04-05
    // (01:30–01:59 twice); 2026-10-03 15:30Z, 02:00 +10:30 → 02:30 +11 on 10-04 (02:00–02:29
    // missing).
    (
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-04T12:00:00Z",
        &["2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"],
    ),
    (
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T12:00:00Z",
        &["2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"],
    ),
    (
        "*/15 * * * *",
        "Australia/Lord_Howe",
        "2026-04-04T14:05:00Z",
        &[
            "2026-04-04T14:15:00Z",
            "2026-04-04T14:30:00Z",
            "2026-04-04T14:45:00Z",
            "2026-04-04T15:00:00Z",
            "2026-04-04T15:15:00Z",
            "2026-04-04T15:30:00Z",
        ],
    ),
    (
        "*/15 * * * *",
        "Australia/Lord_Howe",
        "2026-10-03T15:05:00Z",
        &[
            "2026-10-03T15:15:00Z",
            "2026-10-03T15:30:00Z",
            "2026-10-03T15:45:00Z",
        ],
    ),
    (
        "*/10 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T12:00:00Z",
        &[
            "2026-10-03T15:30:00Z",
            "2026-10-03T15:40:00Z",
            "2026-10-03T15:50:00Z",
            "2026-10-04T15:00:00Z",
        ],
    ),
    // America/Santiago, transitions at midnight: 2026-04-05 03:00Z, Saturday 24:00 -03 → 23:00 -04
    // (Saturday 23:xx twice); 2026-09-06 04:00Z, Saturday 24:00 -04 → Sunday 01:00 -03 (Sunday 00:xx
    // missing).
    (
        "0 0 * * *",
        "America/Santiago",
        "2026-09-05T12:00:00Z",
        &["2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"],
    ),
    (
        "30 23 * * *",
        "America/Santiago",
        "2026-04-04T12:00:00Z",
        &["2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z"],
    ),
    (
        "0,30 0 * * sun",
        "America/Santiago",
        "2026-09-05T12:00:00Z",
        &[
            "2026-09-06T04:00:00Z",
            "2026-09-13T03:00:00Z",
            "2026-09-13T03:30:00Z",
        ],
    ),
    (
        "*/30 * * * sat",
        "America/Santiago",
        "2026-04-05T01:45:00Z",
        &[
            "2026-04-05T02:00:00Z",
            "2026-04-05T02:30:00Z",
            "2026-04-05T03:00:00Z",
            "2026-04-05T03:30:00Z",
            "2026-04-11T04:00:00Z",
        ],
    ),
    (
        "*/30 0 * * *",
        "America/Santiago",
        "2026-09-05T12:00:00Z",
        &["2026-09-07T03:00:00Z", "2026-09-07T03:30:00Z"],
    ),
    (
        "0 * * * *",
        "America/Santiago",
        "2026-09-06T02:30:00Z",
        &[
            "2026-09-06T03:00:00Z",
            "2026-09-06T04:00:00Z",
            "2026-09-06T05:00:00Z",
        ],
    ),
    // End of DST rows.
];

#[test]
fn cron_table() {
    assert!(TABLE.len() >= 40, "the table has {} rows", TABLE.len());
    let mut failures = Vec::new();
    for (expr, zone, from, expected) in TABLE {
        let cron = CronExpr::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let tz: Tz = zone.parse().expect("zone");
        let got = cron.upcoming(t(from), tz, expected.len());
        let want: Vec<DateTime<Utc>> = expected.iter().map(|s| t(s)).collect();
        if got != want {
            failures.push(format!(
                "{expr:?} in {zone} after {from}:\n   want {want:?}\n    got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        TABLE.len(),
        failures.join("\n")
    );
}

#[test]
fn several_lines_fire_once_at_a_shared_instant() {
    // 02:30 does not exist on 2026-03-29 and moves to 03:00 CEST, where the second line fires too.
    let schedule = Schedule::Cron(vec![
        CronExpr::parse("30 2 * * *").expect("cron"),
        CronExpr::parse("0 3 * * *").expect("cron"),
    ]);
    let tz: Tz = "Europe/Amsterdam".parse().expect("zone");
    let first = schedule
        .next_after(t("2026-03-28T12:00:00Z"), tz)
        .expect("fires");
    assert_eq!(first, t("2026-03-29T01:00:00Z"));
    let second = schedule.next_after(first, tz).expect("fires");
    assert_eq!(second, t("2026-03-30T00:30:00Z"));
}

#[test]
fn bad_expressions_name_their_field() {
    let cases = [
        ("61 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 32 * *", "day-of-month"),
        ("* * * 13 *", "month"),
        ("* * * foo *", "month"),
        ("* * * * 8", "day-of-week"),
        ("* * * * funday", "day-of-week"),
        ("* * * * * 61", "second"),
        ("* * *", "expression"),
        ("* * * * * * *", "expression"),
        ("*/x * * * *", "minute"),
        ("0 0 31 2,4 *", "day-of-month"),
        ("0 0 30 2 *", "day-of-month"),
        ("* * * * L", "day-of-week"),
        ("5-1 * * * *", "minute"),
    ];
    for (expr, field) in cases {
        let err = CronExpr::parse(expr).expect_err(expr);
        assert_eq!(err.field, field, "{expr}: {err}");
        assert!(
            err.to_string().starts_with(field),
            "{expr}: message `{err}` should start with the field"
        );
    }
}

const DST_ZONES: [&str; 5] = [
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
];

#[test]
fn fire_times_are_strictly_increasing_through_a_year_of_transitions() {
    // A slot is a UTC instant: the two passes of a repeated hour are two slots, and the
    // scheduler's cursor (`next_after` of the last slot) must always move forward.
    let expressions = [
        "*/15 * * * *",
        "0 * * * *",
        "*/10 2 * * *",
        "0 1-3 * * *",
        "30 2 * * *",
        "0 2,3 * * *",
        "0 0 * * *",
        "45 1 * * *",
    ];
    for zone in DST_ZONES {
        let tz: Tz = zone.parse().expect("zone");
        for expr in expressions {
            let cron = CronExpr::parse(expr).expect("cron");
            let mut cursor = t("2026-01-01T00:00:00Z");
            let end = t("2027-01-01T00:00:00Z");
            while cursor < end {
                let next = cron.next_after(cursor, tz).expect("fires");
                assert!(next > cursor, "{expr} in {zone}: {next} after {cursor}");
                cursor = next;
            }
        }
    }
}

#[test]
fn an_hourly_job_fires_23_times_on_a_spring_forward_day_and_25_on_a_fall_back_day() {
    // Amsterdam's local days 2026-03-29 (23 hours long) and 2026-10-25 (25 hours long).
    let tz: Tz = "Europe/Amsterdam".parse().expect("zone");
    let hourly = CronExpr::parse("0 * * * *").expect("cron");
    let daily = CronExpr::parse("0 2 * * *").expect("cron");
    for (from, to, hourly_fires) in [
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23),
        ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25),
    ] {
        let (from, to) = (t(from), t(to));
        let count = |c: &CronExpr| {
            c.upcoming(from - chrono::Duration::seconds(1), tz, 30)
                .into_iter()
                .filter(|x| *x < to)
                .count()
        };
        assert_eq!(count(&hourly), hourly_fires, "hourly from {from}");
        assert_eq!(count(&daily), 1, "02:00 daily from {from}");
    }
}

#[test]
fn the_rule_follows_the_shape_of_second_minute_and_hour() {
    use sisyphus_model::DstRule::{FixedTime, Interval};
    let cases = [
        ("30 2 * * *", FixedTime),
        ("0 6,18 * * *", FixedTime),
        ("0 0 * * mon-fri", FixedTime),
        ("0 0 1-7 */2 *", FixedTime),
        ("30 2 * * * 0,30", FixedTime),
        ("* 2 * * *", Interval),
        ("0 * * * *", Interval),
        ("*/15 2 * * *", Interval),
        ("0 9-17 * * *", Interval),
        ("5/15 3 * * *", Interval),
        ("0 ? * * *", Interval),
        ("30 2 * * * */20", Interval),
        ("30 2 * * * 10-20", Interval),
    ];
    for (expr, rule) in cases {
        assert_eq!(
            CronExpr::parse(expr).expect("cron").dst_rule(),
            rule,
            "{expr}"
        );
    }
}
