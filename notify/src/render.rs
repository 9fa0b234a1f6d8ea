//! How a notification reads on each channel: the e-mail (subject, plain text, HTML, the run as a
//! JSON attachment — ll.sisyphus' failure report), Mattermost posts, Sentry events. Pure
//! functions of a [`Notification`]; the senders only carry their results.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sentry::protocol::{Breadcrumb, Event as SentryEvent, Level};

use crate::notification::{Event, Line, Notification};

/// The e-mail's subject: `[sisyphus] acme/report failed on h1: the headline`.
pub fn subject(n: &Notification) -> String {
    let mut s = format!("[sisyphus] {} {}", n.job, n.event);
    if let Some(id) = &n.identifier {
        s.push_str(&format!(" ({id})"));
    }
    if let Some(host) = n.host() {
        s.push_str(&format!(" on {host}"));
    }
    s.push_str(": ");
    s.push_str(&n.headline());
    s
}

/// The facts of the run, as (label, value) rows, shared by both bodies.
fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let mut rows = vec![("Job", n.job.clone()), ("Event", n.event.to_string())];
    if let Some(reason) = &n.reason {
        rows.push(("Why", reason.clone()));
    }
    if let Some(r) = &n.run {
        if let Some(id) = r.id {
            let attempt = r
                .attempt
                .map(|a| format!(", attempt {a}"))
                .unwrap_or_default();
            rows.push(("Run", format!("{id}{attempt}")));
        }
        rows.push(("Status", r.status.to_string()));
        if let Some(h) = &r.host {
            rows.push(("Host", h.clone()));
        }
        if let Some(t) = r.started_at {
            rows.push(("Started", t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()));
        }
        if let Some(t) = r.finished_at {
            rows.push((
                "Finished",
                t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
            ));
        }
        if let Some(d) = r.duration() {
            rows.push(("Duration", format!("{:.3} s", d.as_secs_f64())));
        }
        if let Some(c) = r.exit_code {
            rows.push(("Exit code", c.to_string()));
        }
        if let Some(s) = r.signal {
            rows.push(("Signal", s.to_string()));
        }
        if let Some(s) = &r.summary {
            rows.push(("Summary", s.clone()));
        }
    }
    rows
}

fn error(n: &Notification) -> Option<&str> {
    n.run.as_ref().and_then(|r| r.error.as_deref())
}

/// The lines an e-mail shows: those tagged `email`/`external` and the run's last lines, each
/// once, in time order.
fn mail_lines(n: &Notification) -> Vec<&Line> {
    let mut lines: Vec<&Line> = n.tagged_for("email").chain(n.lines.iter()).collect();
    lines.sort_by_key(|l| l.at);
    lines.dedup_by(|a, b| a.at == b.at && a.text == b.text);
    lines
}

/// The plain-text body.
pub fn text_body(n: &Notification) -> String {
    let mut out = String::new();
    for (k, v) in facts(n) {
        out.push_str(&format!("{:<10}{v}\n", format!("{k}:")));
    }
    if let Some(e) = error(n) {
        out.push_str("\nError:\n");
        for l in e.lines() {
            out.push_str(&format!("    {l}\n"));
        }
    }
    let lines = mail_lines(n);
    if !lines.is_empty() {
        out.push_str(&format!("\nLog ({} lines):\n", lines.len()));
        for l in lines {
            out.push_str(&l.display());
            out.push('\n');
        }
    }
    out.push_str("\nThe run is attached as JSON.\n");
    out
}

/// The HTML body: the same content, as a table and preformatted blocks.
pub fn html_body(n: &Notification) -> String {
    let mut out =
        String::from("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n");
    out.push_str(&format!("<h1>{}</h1>\n<table>\n", escape(&subject(n))));
    for (k, v) in facts(n) {
        out.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(&v)
        ));
    }
    out.push_str("</table>\n");
    if let Some(e) = error(n) {
        out.push_str(&format!("<h2>Error</h2>\n<pre>{}</pre>\n", escape(e)));
    }
    let lines = mail_lines(n);
    if !lines.is_empty() {
        out.push_str("<h2>Log</h2>\n<pre>");
        for l in lines {
            out.push_str(&escape(&l.display()));
            out.push('\n');
        }
        out.push_str("</pre>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// The attachment: the whole notification, pretty-printed.
pub fn json_attachment(n: &Notification) -> (String, String) {
    let name = match n.run.as_ref().and_then(|r| r.id) {
        Some(id) => format!("run-{id}.json"),
        None => "run.json".to_string(),
    };
    let body =
        serde_json::to_string_pretty(n).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    (name, body)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Mattermost posts: one per line tagged `mattermost`/`external` for a tagged event (as
/// ll.sisyphus posts each log entry), else one for the event.
pub fn mattermost_messages(n: &Notification) -> Vec<String> {
    let who = match n.host() {
        Some(h) => format!("`{}` on `{h}`", n.job),
        None => format!("`{}`", n.job),
    };
    if n.event == Event::Tagged {
        return n
            .tagged_for("mattermost")
            .map(|l| {
                let task = l
                    .task
                    .as_ref()
                    .map(|t| format!(" :: {t}"))
                    .unwrap_or_default();
                format!("{who}{task}: {}", l.text)
            })
            .collect();
    }
    let mut m = format!("**{}** {who}: {}", n.event, n.headline());
    if let Some(e) = error(n) {
        if e.lines().count() > 1 {
            m.push_str(&format!("\n```\n{e}\n```"));
        }
    }
    vec![m]
}

/// The Sentry level a line's tags ask for (ll.sisyphus: fatal, error, warning, info, debug;
/// else an exception, tagged `exc`, is fatal; else info).
pub fn level_from_tags(tags: &[String]) -> Level {
    for (tag, level) in [
        ("fatal", Level::Fatal),
        ("error", Level::Error),
        ("warning", Level::Warning),
        ("info", Level::Info),
        ("debug", Level::Debug),
    ] {
        if tags.iter().any(|t| t == tag) {
            return level;
        }
    }
    if tags.iter().any(|t| t == "exc") {
        return Level::Fatal;
    }
    Level::Info
}

/// The level of an event that is not a tagged line: an aborting error is fatal.
fn level_of(event: Event) -> Level {
    match event {
        Event::Failed => Level::Fatal,
        Event::Timeout | Event::Lost | Event::SchedulerError => Level::Error,
        Event::Missed | Event::Slow | Event::TooFast | Event::Terminated => Level::Warning,
        Event::Recovered | Event::Tagged => Level::Info,
    }
}

/// Where a Sentry event comes from, besides the notification.
pub struct SentryContext<'a> {
    pub environment: Option<&'a str>,
    pub release: Option<&'a str>,
}

/// Sentry events: one per line tagged `sentry`/`external` for a tagged event, else one for the
/// event. Tags become `sisyphus.tag.<tag>` = `true`; the task stack becomes breadcrumbs.
pub fn sentry_events(n: &Notification, ctx: &SentryContext) -> Vec<SentryEvent<'static>> {
    if n.event == Event::Tagged {
        return n
            .tagged_for("sentry")
            .map(|l| {
                sentry_event(
                    n,
                    ctx,
                    level_from_tags(&l.tags),
                    l.text.clone(),
                    &l.tags,
                    l.task.as_deref(),
                )
            })
            .collect();
    }
    let message = match error(n) {
        Some(e) => e.to_string(),
        None => n.headline(),
    };
    let task = n.lines.last().and_then(|l| l.task.as_deref());
    vec![sentry_event(n, ctx, level_of(n.event), message, &[], task)]
}

fn sentry_event(
    n: &Notification,
    ctx: &SentryContext,
    level: Level,
    message: String,
    tags: &[String],
    task: Option<&str>,
) -> SentryEvent<'static> {
    let mut all_tags = BTreeMap::new();
    for t in tags {
        all_tags.insert(format!("sisyphus.tag.{t}"), "true".to_string());
    }
    all_tags.insert("sisyphus.job".to_string(), n.job.clone());
    all_tags.insert("sisyphus.event".to_string(), n.event.to_string());
    if let Some(r) = &n.run {
        if let Some(id) = r.id {
            all_tags.insert("sisyphus.run".to_string(), id.to_string());
        }
        all_tags.insert("sisyphus.status".to_string(), r.status.to_string());
    }
    let breadcrumbs: Vec<Breadcrumb> = task
        .into_iter()
        .flat_map(|t| t.split(" :: "))
        .map(|segment| Breadcrumb {
            ty: "default".to_string(),
            category: Some("task".to_string()),
            message: Some(segment.to_string()),
            level: Level::Info,
            ..Breadcrumb::default()
        })
        .collect();
    SentryEvent {
        level,
        message: Some(message),
        logger: Some("sisyphus".to_string()),
        server_name: n.host().map(|h| Cow::Owned(h.to_string())),
        environment: ctx.environment.map(|e| Cow::Owned(e.to_string())),
        release: ctx.release.map(|r| Cow::Owned(r.to_string())),
        tags: all_tags,
        breadcrumbs: breadcrumbs.into(),
        timestamp: n.at.into(),
        ..SentryEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::RunInfo;
    use chrono::TimeZone;

    fn failed() -> Notification {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 21, 0, 0)
            .single()
            .expect("time");
        Notification {
            v: 1,
            event: Event::Failed,
            job: "acme/report".into(),
            reason: None,
            to: vec![],
            at,
            run: Some(RunInfo {
                id: Some(9),
                status: sisyphus_model::RunStatus::Failed,
                attempt: Some(1),
                trigger: None,
                host: Some("h1".into()),
                slot: None,
                started_at: Some(at),
                finished_at: Some(at + chrono::Duration::seconds(2)),
                exit_code: Some(1),
                signal: None,
                summary: None,
                error: Some("ValueError: <bad> & worse".into()),
            }),
            lines: vec![Line {
                at,
                stream: Some("sdk".into()),
                tags: vec!["sentry".into(), "warning".into()],
                task: Some("[1/2] module a :: [3/4] file b".into()),
                text: "careful".into(),
            }],
            tagged: vec![],
            identifier: None,
        }
    }

    #[test]
    fn the_mail_shows_the_error_escaped_in_html() {
        let n = failed();
        assert_eq!(
            subject(&n),
            "[sisyphus] acme/report failed on h1: ValueError: <bad> & worse"
        );
        let text = text_body(&n);
        assert!(text.contains("Duration: 2.000 s"), "{text}");
        assert!(text.contains("    ValueError: <bad> & worse"), "{text}");
        let html = html_body(&n);
        assert!(
            html.contains("<pre>ValueError: &lt;bad&gt; &amp; worse</pre>"),
            "{html}"
        );
        assert_eq!(json_attachment(&n).0, "run-9.json");
    }

    #[test]
    fn sentry_levels_tags_and_breadcrumbs_follow_ll_sisyphus() {
        let mut n = failed();
        let ctx = SentryContext {
            environment: Some("prod"),
            release: Some("1.2"),
        };
        let fatal = sentry_events(&n, &ctx);
        assert_eq!(fatal.len(), 1);
        assert_eq!(fatal[0].level, Level::Fatal);
        n.event = Event::Tagged;
        n.tagged = n.lines.clone();
        let events = sentry_events(&n, &ctx);
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.level, Level::Warning);
        assert_eq!(
            e.tags.get("sisyphus.tag.warning").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            e.tags.get("sisyphus.tag.sentry").map(String::as_str),
            Some("true")
        );
        let crumbs: Vec<_> = e
            .breadcrumbs
            .values
            .iter()
            .map(|b| b.message.clone())
            .collect();
        assert_eq!(
            crumbs,
            vec![
                Some("[1/2] module a".to_string()),
                Some("[3/4] file b".to_string())
            ]
        );
        assert_eq!(e.environment.as_deref(), Some("prod"));
        assert_eq!(level_from_tags(&[]), Level::Info);
    }
}
