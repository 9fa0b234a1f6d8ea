//! Calendars and blackouts (issue 18, item 2): calendars set with the real `sisyctl`, jobs that
//! skip them (`skip_on`) or keep to them (`only_on`), and the `skipped` runs the scheduler
//! writes for excluded slots — with a real scheduler daemon on its own login, and tick by tick
//! with the clock pinned on the scheduler's login. Bad input is refused with exit 2 and nothing
//! written.
//!
//! Expected values are worked out by hand (see `model/tests/calendars.rs` for the 2026
//! calendar: 261 weekdays, Dutch holidays, Amsterdam UTC+1 in winter, New York UTC−5).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sisyphus_client::JobDefinition;
use sisyphus_scheduler::calendars::Calendars;
use sisyphus_scheduler::{tick_with, PlanSettings};

use crate::harness::{jobs_file, stderr, stdout, temp_dir, wait_for, Daemon, TestDb};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}

/// Writes a calendar file named `file` (its extension picks the format).
fn calendar_file(file: &str, text: &str) -> PathBuf {
    let path = temp_dir("calendars").join(file);
    std::fs::write(&path, text).expect("write calendar");
    path
}

/// `sisyctl calendar set NAME FILE`, asserting success.
fn set(db: &TestDb, name: &str, file: &str, text: &str) {
    let path = calendar_file(file, text);
    let out = db.sisyctl(&["calendar", "set", name, path.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "calendar set {name}: {}",
        stderr(&out)
    );
}

const NL_HOLIDAYS: &str = "BEGIN:VCALENDAR
VERSION:2.0
X-WR-TIMEZONE:Europe/Amsterdam
BEGIN:VEVENT
SUMMARY:Nieuwjaarsdag
DTSTART;VALUE=DATE:20200101
RRULE:FREQ=YEARLY
END:VEVENT
BEGIN:VEVENT
SUMMARY:Tweede paasdag
DTSTART;VALUE=DATE:20260406
END:VEVENT
BEGIN:VEVENT
SUMMARY:Koningsdag
DTSTART;VALUE=DATE:20260427
END:VEVENT
BEGIN:VEVENT
SUMMARY:Bevrijdingsdag
DTSTART;VALUE=DATE:20260505
END:VEVENT
BEGIN:VEVENT
SUMMARY:Hemelvaartsdag
DTSTART;VALUE=DATE:20260514
END:VEVENT
BEGIN:VEVENT
SUMMARY:Tweede pinksterdag
DTSTART;VALUE=DATE:20260525
END:VEVENT
BEGIN:VEVENT
SUMMARY:Kerst
DTSTART;VALUE=DATE:20261225
DTEND;VALUE=DATE:20261227
END:VEVENT
END:VCALENDAR
";

const BUSINESS_DAYS: &str =
    "zone = \"Europe/Amsterdam\"\nweekdays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\n";

/// New York's freeze, 21 December to 1 January (whole New York days).
const FREEZE: &str =
    "zone = \"America/New_York\"\nranges = [{ from = 2026-12-21, to = 2027-01-01 }]\n";

/// A tick at `now` on the scheduler's own login, with the calendars kept in `calendars`.
async fn tick_at(
    db: &TestDb,
    calendars: &mut Calendars,
    now: DateTime<Utc>,
    settings: &PlanSettings,
) {
    let pool = db.service_pool("scheduler", "cal").await;
    let mut conn = pool.acquire().await.expect("conn");
    tick_with(&mut conn, Some(now), settings, "test", calendars)
        .await
        .expect("tick");
}

/// Applies a job and points its schedule at `from` (apply starts schedules from the real now).
async fn job_from(db: &TestDb, def: JobDefinition, from: DateTime<Utc>) {
    db.client.apply(&[def], false).await.expect("apply");
    sqlx::query("UPDATE sisyphus.jobs SET next_slot = $1")
        .bind(from)
        .execute(&db.pool)
        .await
        .expect("pin");
}

/// (slot, status, error) of every run, by slot.
async fn rows(db: &TestDb) -> Vec<(DateTime<Utc>, String, Option<String>)> {
    sqlx::query_as("SELECT slot, status::text, error FROM sisyphus.runs ORDER BY slot, id")
        .fetch_all(&db.pool)
        .await
        .expect("runs")
}

#[tokio::test]
async fn a_year_of_holidays_weekends_and_a_freeze_in_new_york_is_skipped_by_name() {
    let db = TestDb::new().await;
    set(&db, "nl-holidays", "nl.ics", NL_HOLIDAYS);
    set(&db, "business-days", "business.toml", BUSINESS_DAYS);
    set(&db, "freeze-2026", "freeze.toml", FREEZE);
    // 03:00 in Amsterdam is 21:00 the day before in New York: the freeze covers the Amsterdam
    // dates 22 December to 2 January.
    let def = JobDefinition {
        timezone: Some("Europe/Amsterdam".into()),
        ttl: Some("400d".into()),
        skip_on: Some(vec!["nl-holidays".into(), "freeze-2026".into()]),
        only_on: Some(vec!["business-days".into()]),
        ..JobDefinition::new("ACME", "daily", ["true"]).cron("0 3 * * *")
    };
    job_from(&db, def, t("2026-01-01T03:00:00+01:00")).await;
    let mut calendars = Calendars::default();
    tick_at(
        &db,
        &mut calendars,
        t("2026-12-31T23:59:00+01:00"),
        &PlanSettings::default(),
    )
    .await;
    let all = rows(&db).await;
    assert_eq!(all.len(), 365, "one row per slot of 2026");
    let named = |calendar: &str| -> Vec<NaiveDate> {
        all.iter()
            .filter(|(_, status, e)| {
                status == "skipped"
                    && e.as_deref()
                        .is_some_and(|e| e.contains(&format!("`{calendar}`")))
            })
            // 03:00 in Amsterdam is 01:00 or 02:00 UTC: the same date.
            .map(|(s, ..)| s.date_naive())
            .collect()
    };
    let days = |list: &[&str]| -> Vec<NaiveDate> {
        list.iter()
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("date"))
            .collect()
    };
    assert_eq!(
        named("nl-holidays"),
        days(&[
            "2026-01-01",
            "2026-04-06",
            "2026-04-27",
            "2026-05-05",
            "2026-05-14",
            "2026-05-25",
            "2026-12-25",
            "2026-12-26"
        ])
    );
    assert_eq!(
        named("freeze-2026"),
        days(&[
            "2026-12-22",
            "2026-12-23",
            "2026-12-24",
            "2026-12-27",
            "2026-12-28",
            "2026-12-29",
            "2026-12-30",
            "2026-12-31"
        ])
    );
    // 104 weekend days, less Sat 26 Dec (a holiday) and Sun 27 Dec (frozen).
    assert_eq!(named("business-days").len(), 102);
    // 261 weekdays, less 7 holidays and 7 frozen weekdays.
    let pending = all.iter().filter(|(_, s, _)| s == "pending").count();
    assert_eq!(pending, 247);
    let skipped = db
        .count("runs WHERE status = 'skipped' AND finished_at IS NOT NULL")
        .await;
    assert_eq!(skipped, 8 + 8 + 102, "skipped rows are final");
    // Skipped slots do not count as fired.
    let fired: i32 = sqlx::query_scalar("SELECT fired FROM sisyphus.jobs")
        .fetch_one(&db.pool)
        .await
        .expect("fired");
    assert_eq!(fired, 247);
    // `job next` and `cron --calendar` show the same: 1 January 2027 is a holiday, the 2nd is
    // still New York's 1st (frozen), the 3rd a Sunday.
    let out = db.sisyctl(&["job", "next", "ACME/daily", "--count", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let next = stdout(&out);
    let lines: Vec<&str> = next.lines().collect();
    assert_eq!(
        lines,
        [
            "2027-01-01T03:00:00+01:00  skipped: skip_on calendar `nl-holidays` contains the slot",
            "2027-01-02T03:00:00+01:00  skipped: skip_on calendar `freeze-2026` contains the slot",
            "2027-01-03T03:00:00+01:00  skipped: only_on calendar `business-days` does not contain the slot",
        ],
        "{next}"
    );
    let out = db.sisyctl(&[
        "cron",
        "0 3 * * *",
        "--tz",
        "Europe/Amsterdam",
        "--from",
        "2026-12-20T00:00:00Z",
        "--count",
        "3",
        "--calendar",
        "freeze-2026",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    let calendars_named: Vec<Option<&str>> = json
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["calendar"].as_str())
        .collect();
    assert_eq!(calendars_named, [None, None, Some("freeze-2026")]);
    // `job show` names the calendars.
    let out = db.sisyctl(&["job", "show", "ACME/daily"]);
    let show = stdout(&out);
    assert!(show.contains("skip on: nl-holidays, freeze-2026"), "{show}");
    assert!(show.contains("only on: business-days"), "{show}");
}

#[tokio::test]
async fn a_dst_day_of_an_amsterdam_calendar_skips_23_hourly_slots() {
    let db = TestDb::new().await;
    set(
        &db,
        "dst-day",
        "dst.toml",
        "zone = \"Europe/Amsterdam\"\ndays = [2026-03-29]\n",
    );
    let def = JobDefinition {
        skip_on: Some(vec!["dst-day".into()]),
        ttl: Some("10d".into()),
        ..JobDefinition::new("ACME", "hourly", ["true"]).cron("0 * * * *")
    };
    job_from(&db, def, t("2026-03-28T12:00:00Z")).await;
    tick_at(
        &db,
        &mut Calendars::default(),
        t("2026-03-30T11:59:00Z"),
        &PlanSettings::default(),
    )
    .await;
    let skipped: Vec<DateTime<Utc>> = rows(&db)
        .await
        .into_iter()
        .filter(|(_, s, _)| s == "skipped")
        .map(|(slot, ..)| slot)
        .collect();
    // Midnight to midnight in Amsterdam: 28 March 23:00Z (CET) to 29 March 22:00Z (CEST).
    assert_eq!(skipped.len(), 23);
    assert_eq!(skipped.first(), Some(&t("2026-03-28T23:00:00Z")));
    assert_eq!(skipped.last(), Some(&t("2026-03-29T21:00:00Z")));
}

#[tokio::test]
async fn changing_a_calendar_changes_only_slots_not_yet_materialised() {
    let db = TestDb::new().await;
    // Every minute; the first calendar blacks out 12:02–12:04, the second 12:07–12:09.
    set(
        &db,
        "window",
        "window.toml",
        "zone = \"UTC\"\nranges = [{ from = 2026-06-01T12:02:00, to = 2026-06-01T12:05:00 }]\n",
    );
    let def = JobDefinition {
        skip_on: Some(vec!["window".into()]),
        ..JobDefinition::new("ACME", "minutely", ["true"]).cron("* * * * *")
    };
    job_from(&db, def, t("2026-06-01T12:00:00Z")).await;
    let mut calendars = Calendars::default();
    let settings = PlanSettings::default();
    for minute in 0..6 {
        let now = t("2026-06-01T12:00:00Z") + chrono::Duration::minutes(minute);
        tick_at(&db, &mut calendars, now, &settings).await;
    }
    assert_eq!(
        calendars.loads(),
        1,
        "read once, then kept while its version stayed"
    );
    let before = rows(&db).await;
    let statuses = |rows: &[(DateTime<Utc>, String, Option<String>)]| -> Vec<String> {
        rows.iter().map(|(_, s, _)| s.clone()).collect()
    };
    assert_eq!(
        statuses(&before),
        ["pending", "pending", "skipped", "skipped", "skipped", "pending"]
    );
    // The new window replaces the old one: 12:02–12:04 stay skipped (materialised), 12:07–12:09
    // are skipped from now on.
    set(
        &db,
        "window",
        "window.toml",
        "zone = \"UTC\"\nranges = [{ from = 2026-06-01T12:07:00, to = 2026-06-01T12:10:00 }]\n",
    );
    for minute in 6..12 {
        let now = t("2026-06-01T12:00:00Z") + chrono::Duration::minutes(minute);
        tick_at(&db, &mut calendars, now, &settings).await;
    }
    assert_eq!(calendars.loads(), 2, "read again once its version moved");
    let after = rows(&db).await;
    assert_eq!(&after[..6], &before[..], "materialised runs are untouched");
    assert_eq!(
        statuses(&after[6..]),
        ["pending", "skipped", "skipped", "skipped", "pending", "pending"]
    );
    // Every change of the calendar is in the audit log.
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, target FROM sisyphus.audit WHERE action LIKE 'calendar.%' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .expect("audit");
    assert_eq!(
        audit,
        [
            ("calendar.set".to_string(), "window".to_string()),
            ("calendar.set".to_string(), "window".to_string())
        ]
    );
}

#[tokio::test]
async fn a_real_scheduler_records_excluded_slots_as_skipped() {
    let db = TestDb::new().await;
    // A window from 3 s to 6 s from now (UTC local times, whole seconds).
    let now = Utc::now();
    let second = |offset: i64| {
        (now + chrono::Duration::seconds(offset))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    let (from, to) = (second(3), second(6));
    set(
        &db,
        "blackout",
        "blackout.toml",
        &format!("zone = \"UTC\"\nranges = [{{ from = {from}, to = {to} }}]\n"),
    );
    let file = jobs_file(
        "[[job]]\nproject = \"ACME\"\nname = \"tick\"\ncommand = [\"true\"]\n\
         cron = \"* * * * * *\"\nskip_on = [\"blackout\"]\n",
    );
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _scheduler = Daemon::scheduler(&db.url);
    let end = t(&format!("{to}Z")) + chrono::Duration::seconds(2);
    wait_for(
        "slots after the blackout",
        Duration::from_secs(20),
        || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sisyphus.runs WHERE slot >= $1")
                .bind(end)
                .fetch_one(&db.pool)
                .await
                .expect("count");
            (n > 0).then_some(())
        },
    )
    .await;
    let window = (t(&format!("{from}Z")), t(&format!("{to}Z")));
    for (slot, status, error) in rows(&db).await {
        if slot >= window.0 && slot < window.1 {
            assert_eq!(status, "skipped", "{slot}");
            assert_eq!(
                error.as_deref(),
                Some("skip_on calendar `blackout` contains the slot")
            );
        } else {
            assert_ne!(status, "skipped", "{slot}: {error:?}");
        }
    }
    let skipped = db.count("runs WHERE status = 'skipped'").await;
    assert_eq!(skipped, 3, "the three seconds of the window");
}

#[tokio::test]
async fn bad_calendars_and_names_are_refused_with_nothing_written() {
    let db = TestDb::new().await;
    // An .ics file that does not parse: the line is named.
    let bad = calendar_file(
        "bad.ics",
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nnot a content line\nEND:VEVENT\nEND:VCALENDAR\n",
    );
    let out = db.sisyctl(&["calendar", "set", "bad", bad.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bad.ics: line 4: `not a content line` is not a content line"),
        "{}",
        stderr(&out)
    );
    let unsupported = calendar_file(
        "monthly.ics",
        "BEGIN:VCALENDAR\nX-WR-TIMEZONE:UTC\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20260101\nRRULE:FREQ=MONTHLY\nEND:VEVENT\nEND:VCALENDAR\n",
    );
    let out = db.sisyctl(&[
        "calendar",
        "set",
        "monthly",
        unsupported.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("line 5: RRULE"), "{}", stderr(&out));
    assert_eq!(db.count("calendars").await, 0);
    assert_eq!(db.count("audit WHERE action LIKE 'calendar.%'").await, 0);

    // An unknown calendar name in a job: the key and the name, nothing written.
    set(
        &db,
        "weekends",
        "weekends.toml",
        "zone = \"UTC\"\nweekdays = [\"sat\", \"sun\"]\n",
    );
    let file = jobs_file(
        "[[job]]\nproject = \"ACME\"\nname = \"a\"\ncommand = [\"true\"]\ncron = \"0 9 * * *\"\n\
         [[job]]\nproject = \"ACME\"\nname = \"b\"\ncommand = [\"true\"]\ncron = \"0 9 * * *\"\n\
         skip_on = [\"weekends\", \"nl-holidayz\"]\n",
    );
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("ACME/b") && e.contains("field `skip_on`: unknown calendar `nl-holidayz`"),
        "{e}"
    );
    assert_eq!(
        db.count("jobs").await,
        0,
        "the good job of the file is not written either"
    );

    // Calendars that leave no slot in 5 years: refused like a cron that never fires.
    let file = jobs_file(
        "[[job]]\nproject = \"ACME\"\nname = \"never\"\ncommand = [\"true\"]\n\
         cron = \"0 9 * * mon-fri\"\nonly_on = [\"weekends\"]\n",
    );
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("field `only_on`") && e.contains("exclude every slot"),
        "{e}"
    );
    assert_eq!(db.count("jobs").await, 0);

    // A misspelt name for `cron --calendar`.
    let out = db.sisyctl(&["cron", "0 9 * * *", "--calendar", "weekendz"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--calendar: unknown calendar `weekendz`"),
        "{}",
        stderr(&out)
    );

    // The database refuses a name written past the client too.
    let e = sqlx::query("INSERT INTO sisyphus.jobs (project, name, command, only_on) VALUES ('ACME', 'sql', '{true}', '{nope}')")
        .execute(&db.pool)
        .await
        .expect_err("refused");
    assert!(
        e.to_string().contains("unknown calendar `nope` in only_on"),
        "{e}"
    );

    // A calendar in use is not removed; the error names the job.
    let file = jobs_file(
        "[[job]]\nproject = \"ACME\"\nname = \"weekly\"\ncommand = [\"true\"]\n\
         cron = \"0 9 * * *\"\nskip_on = [\"weekends\"]\n",
    );
    let out = db.sisyctl(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = db.sisyctl(&["calendar", "rm", "weekends"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("calendar weekends is used by ACME/weekly"),
        "{}",
        stderr(&out)
    );
    let out = db.sisyctl(&["calendar", "ls"]);
    assert!(stdout(&out).contains("ACME/weekly"), "{}", stdout(&out));
    let out = db.sisyctl(&["job", "rm", "ACME/weekly"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = db.sisyctl(&["calendar", "rm", "weekends"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(db.count("calendars").await, 0);
    assert_eq!(
        db.count("audit WHERE action = 'calendar.remove' AND target = 'weekends'")
            .await,
        1
    );
}

#[tokio::test]
async fn calendars_are_read_by_everyone_and_written_by_admins() {
    let db = TestDb::new().await;
    set(
        &db,
        "weekends",
        "weekends.toml",
        "zone = \"UTC\"\nweekdays = [\"sat\", \"sun\"]\n",
    );
    let base = db.url.rsplit('/').next().unwrap_or("t").to_string();
    let viewer = format!("{base}_viewer");
    for args in [
        vec!["user", "add", viewer.as_str()],
        vec!["grant", viewer.as_str(), "editor", "ACME.*"],
    ] {
        let out = db.sisyctl(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let url = db
        .url
        .replacen("postgres://postgres@", &format!("postgres://{viewer}@"), 1);
    let as_viewer = |args: &[&str]| crate::harness::sisyctl_with_url(Some(&url), args);
    let out = as_viewer(&["calendar", "show", "weekends"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("every Sat, Sun"), "{}", stdout(&out));
    // An editor of a project may not change the global calendars, by any path.
    let path = calendar_file("mine.toml", "zone = \"UTC\"\ndays = [2026-01-01]\n");
    let out = as_viewer(&["calendar", "set", "weekends", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("may not set calendars: needs admin"),
        "{}",
        stderr(&out)
    );
    let out = as_viewer(&["calendar", "rm", "weekends"]);
    assert!(
        stderr(&out).contains("may not remove calendars: needs admin"),
        "{}",
        stderr(&out)
    );
    let viewer_pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let e = sqlx::query("DELETE FROM sisyphus.calendars")
        .execute(&viewer_pool)
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("permission denied"), "{e}");
    // But may name them in the jobs of their project.
    let file = jobs_file(
        "[[job]]\nproject = \"ACME.X\"\nname = \"j\"\ncommand = [\"true\"]\ncron = \"0 9 * * *\"\n\
         only_on = [\"weekends\"]\n",
    );
    let out = as_viewer(&["apply", file.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    viewer_pool.close().await;
}
