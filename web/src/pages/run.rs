//! The Run page: the run's facts (scheduled vs started, duration, exit, attempt, host, pid,
//! trigger and who asked), the attempts of its slot, and its live log — the last lines, more as
//! they are written (`/runs/ID/lines?after=SEQ`), filtered by tag, searched in the page, and
//! downloadable whole as text; kill, suspend, resume and rerun.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use sisyphus_client::db;
use sisyphus_client::views::LogRow;
use sisyphus_client::{RunId, RunStatus};

use super::given;
use crate::auth::Person;
use crate::layout::{self, Nav};
use crate::pages::overview::{control_buttons, project_of};
use crate::pages::runs::{duration, runs_table};
use crate::{App, Error};

/// Lines shown when the page opens (the rest: download).
const TAIL: u32 = 500;
/// Lines one `lines` request returns at most.
const BATCH: i64 = 2000;

#[derive(Deserialize, Default)]
pub struct LogQuery {
    tag: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<LogQuery>,
) -> Result<Html<String>, Error> {
    let id = RunId(id);
    let tag = given(&q.tag);
    let mut tx = app.begin(&person).await?;
    let run = db::runs::one(&mut tx, id).await?.ok_or(Error::NotFound)?;
    let facts = db::web::run_facts(&mut tx, id)
        .await?
        .ok_or(Error::NotFound)?;
    let attempts = db::web::attempts(&mut tx, id).await?;
    let may = db::web::abilities(&mut tx).await?;
    let operate = !app.read_only && may.may_operate(project_of(&run.job));

    let lateness = run.started_at.map(|s| {
        layout::seconds((s - run.scheduled_for).num_milliseconds().max(0) as f64 / 1000.0)
    });
    let live = html! {
        div.actionbar {
            (layout::status(run.status))
            @if let Some(r) = &facts.requested { " " span.badge { (r) " requested" } }
            @if operate {
                @if matches!(run.status, RunStatus::Running | RunStatus::Suspended) { (control_buttons(&person, &run)) }
                @if run.status.is_final() { (layout::button(&person, &format!("/runs/{}/rerun", run.id), "Rerun", "", Some("Run this slot again?"))) }
            }
        }
        div.facts {
            dl {
                dt { "Job" } dd { a href=(layout::job_href(&run.job)) { (run.job) } }
                dt { "Slot" } dd { (layout::time(Some(run.slot))) }
                dt { "Scheduled" } dd { (layout::time(Some(run.scheduled_for))) }
                dt { "Started" } dd { (layout::time(run.started_at)) @if let Some(l) = &lateness { " " span.muted { "(" (l) " late)" } } }
                dt { "Finished" } dd { (layout::time(run.finished_at)) }
                dt { "Duration" } dd { (duration(&run)) }
                dt { "Exit" } dd { (layout::or_dash(run.exit_code.map(|c| c.to_string()).as_deref())) @if let Some(s) = facts.signal { " " span.muted { "signal " (s) } } }
                dt { "Attempt" } dd { (run.attempt) }
                dt { "Host" } dd { (layout::or_dash(run.host.as_deref())) @if let Some(pid) = facts.pid { " " span.muted { "pid " (pid) } } }
                dt { "Trigger" } dd { (run.trigger) @if let Some(by) = &facts.created_by { " " span.muted { "by " (by) } } @if let Some(of) = run.rerun_of { " " a href=(format!("/runs/{of}")) { "rerun of #" (of) } } }
                @if let Some(s) = &run.summary { dt { "Summary" } dd { (s) } }
                @if let Some(e) = &run.error { dt { "Error" } dd.bad { (e) } }
                @if let Some(params) = &run.params { dt { "Parameters" } dd { @for (k, v) in params { code { (k) "=" (v) } " " } } }
            }
        }
        @if attempts.len() > 1 {
            section { h2 { "Runs of this slot" } (runs_table(&attempts)) }
        }
    };
    let start = db::logs::tail_start(&mut tx, id, tag.as_deref(), TAIL)
        .await?
        .unwrap_or(0);
    let lines = db::logs::list(&mut tx, id, start, tag.as_deref(), i64::from(TAIL)).await?;
    let log = log_section(id, &lines, start, tag.as_deref());
    Ok(super::respond(&headers, live, |live| {
        layout::page_with(
            &format!("Run #{}", id),
            Nav::Runs,
            &person,
            app.read_only,
            html! {},
            live,
            log,
            Some(id.0),
        )
    }))
}

fn log_section(run: RunId, lines: &[LogRow], skipped_after: i32, tag: Option<&str>) -> Markup {
    let last = lines.last().map_or(skipped_after, |l| l.seq);
    html! {
        section.log {
            h2 { "Log" }
            form.filters method="get" action=(format!("/runs/{run}")) {
                input type="text" name="tag" placeholder="Only lines tagged…" value=[tag];
                button type="submit" { "Filter" }
                input #log-search type="search" placeholder="Search these lines";
                a href=(format!("/runs/{run}/log.txt")) download { "Download as text" }
            }
            @if skipped_after > 0 { p.muted { "Earlier lines: download the whole log." } }
            table #log data-run=(run.0) data-last=(last) data-tag=[tag] {
                tbody {
                    @for l in lines { (line_row(l)) }
                }
            }
        }
    }
}

fn line_row(l: &LogRow) -> Markup {
    html! {
        tr class=(format!("s-{}", l.stream.as_str())) {
            td.seq { (l.seq) }
            td.at { (l.at.format("%H:%M:%S%.3f")) }
            td.tags { @for t in &l.tags { span.tag { (t) } } }
            td.text { (l.text) }
        }
    }
}

/// A log line as the page's script appends it.
#[derive(Serialize)]
pub struct Line {
    seq: i32,
    at: String,
    stream: String,
    tags: Vec<String>,
    text: String,
}

#[derive(Deserialize)]
pub struct After {
    after: i32,
    tag: Option<String>,
}

/// `GET /runs/ID/lines?after=SEQ[&tag=T]`: the lines after SEQ, as JSON.
pub async fn lines(
    State(app): State<Arc<App>>,
    person: Person,
    Path(id): Path<i64>,
    Query(q): Query<After>,
) -> Result<Json<Vec<Line>>, Error> {
    let id = RunId(id);
    let mut tx = app.begin(&person).await?;
    db::runs::one(&mut tx, id).await?.ok_or(Error::NotFound)?;
    let rows = db::logs::list(&mut tx, id, q.after, given(&q.tag).as_deref(), BATCH).await?;
    Ok(Json(
        rows.into_iter()
            .map(|l| Line {
                seq: l.seq,
                at: l.at.format("%H:%M:%S%.3f").to_string(),
                stream: l.stream.as_str().to_string(),
                tags: l.tags,
                text: l.text,
            })
            .collect(),
    ))
}

/// `GET /runs/ID/log.txt`: the whole log as text, one line each: time, stream, tags, text.
pub async fn download(
    State(app): State<Arc<App>>,
    person: Person,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let id = RunId(id);
    let mut tx = app.begin(&person).await?;
    db::runs::one(&mut tx, id).await?.ok_or(Error::NotFound)?;
    let mut text = String::new();
    let mut after = 0;
    loop {
        let rows = db::logs::list(&mut tx, id, after, None, 10_000).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for l in &rows {
            let tags = if l.tags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", l.tags.join(","))
            };
            let _ = writeln!(
                text,
                "{} {}{} {}",
                l.at.to_rfc3339(),
                l.stream.as_str(),
                tags,
                l.text
            );
        }
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"run-{}.log\"", id.0),
            ),
        ],
        text,
    )
        .into_response())
}
