//! Jobs written with ll.sisyphus (Python), run unmodified (`format = "ll.sisyphus"`).
//!
//! The guardian appends `--log2file=no --log2stdout=yes --log2stderr=no`
//! ([`sisyphus_model::spec::LL_SISYPHUS_FLAGS`]; ll.sisyphus' own spellings, `Job.argparser`) to
//! the job's command line, so the job writes its log lines to stdout and no log file, and reads
//! those lines here: each is ll.sisyphus' default `formatlogline`,
//!
//! ```text
//! [2026-12-03 14:09:46.170103]=[t+0:00:00.008082] :: child 13153 :: [1/2] feed alpha :: {xml}{warning} >> can't parse alpha.xml
//! ```
//!
//! — the time the line was logged (the job's local time, microseconds left out when zero), the
//! time since the job started, the task stack (ll.sisyphus' own `parent PID`/`child PID` first,
//! then the job's tasks, labels as the SDK writes them), the tags in braces, and after ` >> ` one
//! line of the text (a text of several lines, such as a traceback, is several lines with the same
//! prefix). A [`Reader`] turns each into a tagged line with its task stack and its own time, and
//! keeps the result line aside for the outcome ([`result_of`]).
//!
//! Two things ll.sisyphus does that the reader undoes or notes:
//!
//! - **Delayed lines** (the tag `delay`, which ll.sisyphus drops before printing) wait until the
//!   first ordinary line and come out then, with the time they were logged: older than lines
//!   already printed. Its forked worker and the parent that watches its maxtime both hold the
//!   parent's delayed lines; when the parent logs something of its own (the timeout), it prints
//!   them a second time. A line that repeats one already read, and is older than the newest line
//!   read, is such a repetition and is dropped ([`Read::Repeated`]).
//! - **Nothing at all** is printed by a run that logged only delayed lines and returned `None`:
//!   ll.sisyphus drops delayed lines of an uneventful run, and its result line too.
//!
//! Lines that are not in this format (what the job `print`s, a custom `formatlogline`) stay
//! plain stdout lines. The fixtures of the tests are real output of ll-xist 5.84
//! (`guardian/fixtures/llsisyphus/capture.sh`).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, Local, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use sisyphus_protocol::Status;

/// How many distinct lines a reader remembers to recognise a repeated delayed line (their hashes:
/// 8 bytes each). Repetitions come early in a run (the parent's delayed start-up lines), so a
/// bound costs nothing in practice.
const REMEMBERED: usize = 50_000;

/// How far a line's own time may lie before the run's start or after it was read and still be
/// taken as its time (clocks of one host; a time outside is a misread zone, and the time the line
/// was read is used).
const SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// One log line as ll.sisyphus prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was logged, in the job's local time.
    pub time: NaiveDateTime,
    /// The task stack, outermost first, each as ll.sisyphus labels it (`child 4711`,
    /// `[1/2] feed alpha`).
    pub tasks: Vec<String>,
    pub tags: Vec<String>,
    pub text: String,
}

impl LogLine {
    /// Parses one line of ll.sisyphus' default format; None for anything else.
    pub fn parse(line: &str) -> Option<LogLine> {
        let rest = line.strip_prefix('[')?;
        let (time, rest) = rest.split_once("]=[t+")?;
        let time = parse_time(time)?;
        let (elapsed, rest) = rest.split_once(']')?;
        if elapsed.is_empty()
            || !elapsed
                .chars()
                .all(|c| c.is_ascii_digit() || " :.,-dayDAY".contains(c))
        {
            return None;
        }
        // The header (tasks and tags, each after ` :: `) ends at the first ` >> `; a line of an
        // empty text may have lost the space after it.
        let (header, text) = match rest.split_once(" >> ") {
            Some(split) => split,
            None => (rest.strip_suffix(" >>")?, ""),
        };
        let mut segments: Vec<&str> = match header {
            "" => Vec::new(),
            h => h.strip_prefix(" :: ")?.split(" :: ").collect(),
        };
        let tags = match segments.last().and_then(|s| tags_of(s)) {
            Some(tags) => {
                segments.pop();
                tags
            }
            None => Vec::new(),
        };
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(LogLine {
            time,
            tasks: segments.into_iter().map(str::to_string).collect(),
            tags,
            text: text.to_string(),
        })
    }

    /// The task stack as `run_logs.task` holds it (the SDK's form: levels joined by ` :: `),
    /// None when empty.
    pub fn task(&self) -> Option<String> {
        (!self.tasks.is_empty()).then(|| self.tasks.join(" :: "))
    }

    fn has(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// `2026-12-03 14:09:46.170103` or, at a whole second, `2026-12-03 14:09:46`.
fn parse_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()
}

/// `{xml}{warning}` → `["xml", "warning"]`; None when the segment is not tags (a task label).
fn tags_of(segment: &str) -> Option<Vec<String>> {
    let inner = segment.strip_prefix('{')?.strip_suffix('}')?;
    let tags: Vec<String> = inner.split("}{").map(str::to_string).collect();
    let clean = tags
        .iter()
        .all(|t| !t.is_empty() && !t.contains(['{', '}']));
    clean.then_some(tags)
}

/// What a result line says: ll.sisyphus ends a run with one line tagged `sisyphus` and `result`,
/// and `ok` (completed; text `None` when `execute` returned None: uneventful), `errors` (completed,
/// but exceptions were logged — still successful or uneventful, as ll.sisyphus' status says),
/// `fail` (an exception: failed; `failed with KeyboardInterrupt`: interrupted) or `kill` (past
/// its own maxtime: timeout). The text is the summary (or, for the others, the error).
pub fn result_of(line: &LogLine) -> Option<(Status, Option<String>)> {
    if !(line.has("sisyphus") && line.has("result")) {
        return None;
    }
    let text = Some(line.text.clone());
    if line.has("kill") {
        Some((Status::Timeout, text))
    } else if line.has("fail") {
        let interrupted = line.text == "failed with KeyboardInterrupt";
        let status = match interrupted {
            true => Status::Interrupted,
            false => Status::Failed,
        };
        Some((status, text))
    } else if line.has("ok") || line.has("errors") {
        match line.text.as_str() {
            "None" => Some((Status::Uneventful, None)),
            _ => Some((Status::Successful, text)),
        }
    } else {
        None
    }
}

/// The zone an ll.sisyphus job writes its times in: the guardian's own (the job got no `TZ`, or
/// the guardian's), a named one (the job's `TZ`), or one the guardian cannot read (a POSIX rule
/// such as `CET-1CEST`: the lines then keep the time they were read).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Local,
    Named(Tz),
    Unknown,
}

impl Zone {
    /// The zone of a job whose environment has `job_tz` as `TZ`, under a guardian whose own `TZ`
    /// is `guardian_tz`.
    pub fn of(job_tz: Option<&str>, guardian_tz: Option<&str>) -> Zone {
        match job_tz {
            None => Zone::Local,
            Some(tz) if Some(tz) == guardian_tz => Zone::Local,
            Some(tz) => tz
                .trim_start_matches(':')
                .parse::<Tz>()
                .map_or(Zone::Unknown, Zone::Named),
        }
    }

    /// The instants a local time may be (none in a spring-forward gap, two in a fall-back hour).
    fn instants(self, t: NaiveDateTime) -> Vec<DateTime<Utc>> {
        fn all<Z: TimeZone>(r: LocalResult<DateTime<Z>>) -> Vec<DateTime<Utc>> {
            match r {
                LocalResult::Single(a) => vec![a.with_timezone(&Utc)],
                LocalResult::Ambiguous(a, b) => {
                    vec![a.with_timezone(&Utc), b.with_timezone(&Utc)]
                }
                LocalResult::None => Vec::new(),
            }
        }
        match self {
            Zone::Local => all(Local.from_local_datetime(&t)),
            Zone::Named(tz) => all(tz.from_local_datetime(&t)),
            Zone::Unknown => Vec::new(),
        }
    }
}

/// What one stdout line of an ll.sisyphus job is.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// A log line, with when it was logged (the line's own time where it reads as a plausible
    /// instant, else when it was read) and, for the result line, what it says.
    Line {
        line: LogLine,
        at: DateTime<Utc>,
        result: Option<(Status, Option<String>)>,
    },
    /// A delayed line printed a second time (by the parent of a forked worker): dropped.
    Repeated,
    /// Not ll.sisyphus' format: a plain stdout line.
    Plain,
}

/// Reads one run's stdout lines as ll.sisyphus prints them.
#[derive(Debug)]
pub struct Reader {
    zone: Zone,
    started: DateTime<Utc>,
    seen: HashSet<u64>,
    newest: Option<NaiveDateTime>,
    /// Some ll.sisyphus line was read (so a missing result line means the run did not end as
    /// ll.sisyphus ends its runs).
    pub any: bool,
    /// The run's result, from its result line (the first line of a result text of several).
    pub result: Option<(Status, Option<String>)>,
    result_time: Option<NaiveDateTime>,
}

impl Reader {
    /// A reader for a run that started at `started` and writes its times in `zone`.
    pub fn new(zone: Zone, started: DateTime<Utc>) -> Reader {
        Reader {
            zone,
            started,
            seen: HashSet::new(),
            newest: None,
            any: false,
            result: None,
            result_time: None,
        }
    }

    /// One stdout line, read at `now`.
    pub fn read(&mut self, text: &str, now: DateTime<Utc>) -> Read {
        let Some(line) = LogLine::parse(text) else {
            return Read::Plain;
        };
        let hash = {
            let mut h = DefaultHasher::new();
            text.hash(&mut h);
            h.finish()
        };
        let older = self.newest.is_some_and(|n| line.time < n);
        if older && self.seen.contains(&hash) {
            return Read::Repeated;
        }
        if self.seen.len() < REMEMBERED {
            self.seen.insert(hash);
        }
        self.newest = self.newest.max(Some(line.time));
        self.any = true;
        let result = result_of(&line);
        // A result of several lines is several result lines of one time: the first one says it.
        // A later result (a job in ll.sisyphus' repeat mode) replaces it.
        if let Some(r) = &result {
            if self.result_time != Some(line.time) {
                self.result = Some(r.clone());
                self.result_time = Some(line.time);
            }
        }
        let at = self.instant(line.time, now);
        Read::Line { line, at, result }
    }

    /// The line's own time as an instant, if it is one between the run's start and now (with
    /// some slack); else `now`.
    fn instant(&self, time: NaiveDateTime, now: DateTime<Utc>) -> DateTime<Utc> {
        let (from, to) = (self.started - SLACK, now + SLACK);
        self.zone
            .instants(time)
            .into_iter()
            .filter(|t| (from..=to).contains(t))
            .min_by_key(|t| (now - *t).abs())
            .unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FETCH: &str = include_str!("../fixtures/llsisyphus/fetch.out");
    const RAISES: &str = include_str!("../fixtures/llsisyphus/raises.out");
    const OVERTIME: &str = include_str!("../fixtures/llsisyphus/overtime.out");
    const UNEVENTFUL: &str = include_str!("../fixtures/llsisyphus/uneventful.out");
    const QUIET: &str = include_str!("../fixtures/llsisyphus/quiet.out");
    const ERRORS: &str = include_str!("../fixtures/llsisyphus/errors.out");
    const INTERRUPTED: &str = include_str!("../fixtures/llsisyphus/interrupted.out");
    const SOLO_TIMEOUT: &str = include_str!("../fixtures/llsisyphus/solo-timeout.out");

    /// The fixtures were captured in UTC.
    fn utc(text: &str) -> DateTime<Utc> {
        let t = parse_time(text).expect("a time");
        Utc.from_utc_datetime(&t)
    }

    /// Every line of a fixture through one reader (read a minute after the run started).
    fn read_all(fixture: &str) -> (Reader, Vec<Read>) {
        let first = fixture
            .lines()
            .next()
            .and_then(LogLine::parse)
            .map_or_else(Utc::now, |l| Utc.from_utc_datetime(&l.time));
        let mut reader = Reader::new(Zone::Named(Tz::UTC), first);
        let now = first + chrono::TimeDelta::seconds(60);
        let reads = fixture.lines().map(|l| reader.read(l, now)).collect();
        (reader, reads)
    }

    /// (tasks, tags, text) of each log line read.
    fn lines(reads: &[Read]) -> Vec<(String, String, String)> {
        reads
            .iter()
            .filter_map(|r| match r {
                Read::Line { line, .. } => Some((
                    line.task().unwrap_or_default(),
                    line.tags.join(","),
                    line.text.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    fn l(task: &str, tags: &str, text: &str) -> (String, String, String) {
        (task.into(), tags.into(), text.into())
    }

    #[test]
    fn the_fetch_example_reads_as_tagged_lines_with_tasks_and_a_successful_result() {
        let (reader, reads) = read_all(FETCH);
        let got = lines(&reads);
        assert_eq!(got.len(), 8, "{got:#?}");
        assert!(got[0].0.starts_with("parent "), "{got:?}");
        assert_eq!(got[0].1, "sisyphus,init");
        assert!(got[0].2.ends_with("fetch.py (max time 0:03:00)"), "{got:?}");
        assert_eq!(got[1].2, "logging to <stdout>");
        assert!(got[3].0.starts_with("child "));
        assert_eq!(
            (got[4].1.as_str(), got[4].2.as_str()),
            ("", "fetching data from 'http://www.python.org/'")
        );
        assert_eq!(got[7].1, "sisyphus,result,ok");
        assert_eq!(
            reader.result,
            Some((
                Status::Successful,
                Some("cached 'http://www.python.org/' as 'Python.html' (12,013 bytes)".into())
            ))
        );
        // Each line keeps its own time.
        match &reads[4] {
            Read::Line { at, .. } => assert_eq!(*at, utc("2026-12-03 14:17:02.754134")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_job_that_raises_fails_with_its_tasks_tags_and_traceback() {
        let (reader, reads) = read_all(RAISES);
        let got = lines(&reads);
        let child = got[4].0.clone();
        assert!(child.starts_with("child "), "{got:?}");
        // The delayed line, flushed by the first ordinary one.
        assert_eq!(got[4], l(&child, "", "reading the feed"));
        assert_eq!(
            got[5],
            l(
                &format!("{child} :: [1/2] feed alpha"),
                "xml,warning",
                "can't parse alpha.xml"
            )
        );
        assert_eq!(
            got[6],
            l(
                &format!("{child} :: [2/2] feed beta"),
                "xml,warning",
                "can't parse beta.xml"
            )
        );
        let traceback: Vec<_> = got
            .iter()
            .filter(|x| x.1 == "sisyphus,external,exc")
            .collect();
        assert_eq!(
            traceback.first().map(|x| x.2.as_str()),
            Some("Traceback (most recent call last):")
        );
        assert_eq!(
            traceback.last().map(|x| x.2.as_str()),
            Some("ValueError: record 42 has no id")
        );
        // ll.sisyphus logs the exception outside the job's task (the `with` block has ended).
        assert!(traceback.iter().all(|x| x.0 == child));
        // An indented traceback line keeps its spaces.
        assert!(traceback
            .iter()
            .any(|x| x.2.starts_with("    raise ValueError")));
        assert_eq!(
            reader.result,
            Some((
                Status::Failed,
                Some("failed with ValueError: record 42 has no id".into())
            ))
        );
    }

    #[test]
    fn past_its_own_maxtime_a_job_times_out_and_repeated_delayed_lines_are_dropped() {
        let (reader, reads) = read_all(OVERTIME);
        assert_eq!(OVERTIME.lines().count(), 16);
        let repeated = reads.iter().filter(|r| **r == Read::Repeated).count();
        // The parent prints its three delayed start-up lines again before its timeout.
        assert_eq!(repeated, 3);
        let got = lines(&reads);
        assert_eq!(got.len(), 13);
        assert_eq!(
            got.iter().filter(|x| x.2 == "logging to <stdout>").count(),
            1
        );
        let exc: Vec<_> = got.iter().filter(|x| x.1 == "exc").collect();
        assert_eq!(
            exc.last().map(|x| x.2.as_str()),
            Some("ll.misc.Timeout: timed out after 0:00:01")
        );
        let (status, text) = reader.result.clone().expect("a result");
        assert_eq!(status, Status::Timeout);
        let text = text.expect("text");
        assert!(
            text.starts_with("Terminated child ") && text.ends_with(": timed out after 0:00:01"),
            "{text}"
        );
    }

    #[test]
    fn identical_lines_of_one_traceback_are_not_repetitions() {
        // Two identical lines at the newest time (a traceback through the same frame twice) are
        // both kept; only an identical line older than the newest is a repetition.
        let mut reader = Reader::new(Zone::Named(Tz::UTC), utc("2026-12-03 14:00:00"));
        let now = utc("2026-12-03 14:01:00");
        let a = "[2026-12-03 14:00:01.5]=[t+0:00:01.5] :: {exc} >>     f()";
        let b = "[2026-12-03 14:00:02]=[t+0:00:02] >> later";
        assert!(matches!(reader.read(a, now), Read::Line { .. }));
        assert!(matches!(reader.read(a, now), Read::Line { .. }));
        assert!(matches!(reader.read(b, now), Read::Line { .. }));
        assert_eq!(reader.read(a, now), Read::Repeated);
    }

    #[test]
    fn an_uneventful_job_prints_nothing_or_a_none_result() {
        let (reader, reads) = read_all(UNEVENTFUL);
        assert!(reads.is_empty());
        assert!(!reader.any);
        assert_eq!(reader.result, None);
        // With an ordinary line logged first, ll.sisyphus prints the result `None`.
        let (reader, _) = read_all(QUIET);
        assert_eq!(reader.result, Some((Status::Uneventful, None)));
    }

    #[test]
    fn errors_logged_on_the_way_still_end_successful_with_the_first_result_line() {
        let (reader, reads) = read_all(ERRORS);
        let got = lines(&reads);
        assert!(got
            .iter()
            .any(|x| x.1 == "warning,exc" && x.2 == "KeyError: 'gone'"));
        assert_eq!(
            reader.result,
            Some((Status::Successful, Some("done despite one error".into())))
        );
        assert_eq!(
            got.last().map(|x| x.2.as_str()),
            Some("second line of the result")
        );
    }

    #[test]
    fn a_keyboard_interrupt_is_interrupted_and_a_solo_timeout_is_a_timeout() {
        let (reader, reads) = read_all(INTERRUPTED);
        // Without a fork there is no `parent`/`child` task.
        assert_eq!(lines(&reads)[3], l("", "", "about to be interrupted"));
        assert_eq!(
            reader.result,
            Some((
                Status::Interrupted,
                Some("failed with KeyboardInterrupt".into())
            ))
        );
        let (reader, reads) = read_all(SOLO_TIMEOUT);
        assert_eq!(
            lines(&reads)[3],
            l("", "", "delayed, shown once an ordinary line is")
        );
        assert_eq!(
            reader.result,
            Some((
                Status::Timeout,
                Some("Terminated: timed out after 0:00:01".into())
            ))
        );
    }

    #[test]
    fn what_is_not_ll_sisyphus_format_stays_plain() {
        let mut reader = Reader::new(Zone::Local, Utc::now());
        for plain in [
            "hello",
            "",
            "[not a time]=[t+0:00:00] >> x",
            "[2026-12-03 14:00:00]=[t+0:00:00]",
            "[2026-12-03 14:00:00]=[t+0:00:00] :: >> empty task",
            "[2026-12-03 14:00:00]=[t+soon] >> x",
            "[2026-12-03 14:00:00]=[t+0:00:00] no separator >> x",
        ] {
            assert_eq!(reader.read(plain, Utc::now()), Read::Plain, "{plain:?}");
        }
        assert!(!reader.any);
        // An empty text, a day in the elapsed time, tags without tasks.
        let line = LogLine::parse("[2026-12-03 14:00:00]=[t+1 day, 0:00:03] :: {a}{b} >>")
            .expect("parses");
        assert_eq!(
            (line.tags.join(","), line.text.as_str()),
            ("a,b".into(), "")
        );
        assert_eq!(line.task(), None);
    }

    #[test]
    fn times_are_read_in_the_jobs_zone_within_the_run() {
        let started = utc("2026-07-01 10:00:00");
        let now = utc("2026-07-01 10:05:00");
        let line = "[2026-07-01 12:01:00.25]=[t+0:01:00.25] >> in Amsterdam's summer time";
        let amsterdam = Zone::of(Some(":Europe/Amsterdam"), None);
        assert_eq!(amsterdam, Zone::Named(Tz::Europe__Amsterdam));
        let mut reader = Reader::new(amsterdam, started);
        match reader.read(line, now) {
            Read::Line { at, .. } => assert_eq!(at, utc("2026-07-01 10:01:00.25")),
            other => panic!("{other:?}"),
        }
        // Read as UTC the same line would lie after it was read: the time it was read is kept.
        let mut reader = Reader::new(Zone::Named(Tz::UTC), started);
        match reader.read(line, now) {
            Read::Line { at, .. } => assert_eq!(at, now),
            other => panic!("{other:?}"),
        }
        // A zone the guardian cannot name keeps the time of reading too.
        assert_eq!(Zone::of(Some("CET-1CEST"), None), Zone::Unknown);
        assert_eq!(
            Zone::of(Some("Europe/Berlin"), Some("Europe/Berlin")),
            Zone::Local
        );
        assert_eq!(Zone::of(None, Some("Europe/Berlin")), Zone::Local);
    }
}
