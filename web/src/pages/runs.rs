//! The Runs screen: filter by job, status, host, trigger and time; keyset pages (`?before=ID`),
//! so the thousandth page costs what the first does.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use maud::{html, Markup};
use serde::Deserialize;
use sisyphus_client::db;
use sisyphus_client::{JobRef, Run, RunId, RunStatus, RunTrigger};

use super::{given, parsed, time};
use crate::auth::Person;
use crate::layout::{self, Nav};
use crate::{App, Error};

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct Filter {
    job: Option<String>,
    status: Option<String>,
    host: Option<String>,
    trigger: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Result<Html<String>, Error> {
    let job = parsed::<JobRef>("job", &f.job)?;
    let page = db::web::RunPage {
        before: parsed::<i64>("before", &f.before)?.map(RunId),
        project: job.as_ref().map(|j| j.project.clone()),
        name: job.as_ref().map(|j| j.name.clone()),
        status: parsed::<RunStatus>("status", &f.status)?,
        host: given(&f.host),
        trigger: parsed::<RunTrigger>("trigger", &f.trigger)?,
        from: time("from", &f.from)?,
        to: time("to", &f.to)?,
        size: PAGE,
    };
    if let (Some(from), Some(to)) = (page.from, page.to) {
        if from >= to {
            return Err(Error::BadRequest(format!(
                "from: {from} is not before to: {to}"
            )));
        }
    }
    let mut tx = app.begin(&person).await?;
    let runs = db::web::runs_page(&mut tx, &page).await?;
    let next = (runs.len() as i64 == PAGE)
        .then(|| runs.last().map(|r| r.id))
        .flatten();

    let filters = html! {
        form.filters method="get" action="/runs" {
            input type="text" name="job" placeholder="PROJECT/NAME" value=[given(&f.job)];
            select name="status" {
                option value="" { "Any status" }
                @for s in RunStatus::ALL { option value=(s) selected[given(&f.status).as_deref() == Some(s.as_str())] { (s) } }
            }
            input type="text" name="host" placeholder="Host" value=[given(&f.host)];
            select name="trigger" {
                option value="" { "Any trigger" }
                @for t in RunTrigger::ALL { option value=(t) selected[given(&f.trigger).as_deref() == Some(t.as_str())] { (t) } }
            }
            label { "from " input type="text" name="from" placeholder="2026-12-01" value=[given(&f.from)]; }
            label { "to " input type="text" name="to" placeholder="2026-12-03T12:00" value=[given(&f.to)]; }
            button type="submit" { "Filter" }
        }
    };
    let live = html! {
        (runs_table(&runs))
        p.pager {
            @if f.before.is_some() { a href=(href(&f, None)) { "← Newest" } " " }
            @if let Some(last) = next { a href=(href(&f, Some(last))) { "Older →" } }
        }
    };
    Ok(super::respond(&headers, live, |live| {
        layout::page_with(
            "Runs",
            Nav::Runs,
            &person,
            app.read_only,
            filters,
            live,
            html! {},
            None,
        )
    }))
}

/// Runs as a table: id, job, status, trigger, scheduled, started, duration, host, summary.
pub fn runs_table(runs: &[Run]) -> Markup {
    html! {
        @if runs.is_empty() { p.muted { "No run matches." } }
        @else {
            table.runs {
                thead { tr { th { "Run" } th { "Job" } th { "Status" } th { "Trigger" } th { "Scheduled" } th { "Duration" } th { "Host" } th { "Summary" } } }
                tbody {
                    @for r in runs {
                        tr {
                            td { a href=(format!("/runs/{}", r.id)) { "#" (r.id) } @if r.attempt > 1 { " " span.muted { "try " (r.attempt) } } }
                            td { a href=(layout::job_href(&r.job)) { (r.job) } }
                            td { (layout::status(r.status)) }
                            td { (r.trigger) }
                            td { (layout::time(Some(r.scheduled_for))) }
                            td { (duration(r)) }
                            td { (layout::or_dash(r.host.as_deref())) }
                            td.why { (layout::or_dash(r.error.as_deref().or(r.summary.as_deref()))) }
                        }
                    }
                }
            }
        }
    }
}

/// How long a run took (or has taken so far).
pub fn duration(r: &Run) -> String {
    match (r.started_at, r.finished_at) {
        (Some(s), Some(f)) => layout::seconds((f - s).num_milliseconds() as f64 / 1000.0),
        (Some(s), None) => format!(
            "{} so far",
            layout::seconds((chrono::Utc::now() - s).num_milliseconds() as f64 / 1000.0)
        ),
        _ => String::new(),
    }
}

fn href(f: &Filter, before: Option<RunId>) -> String {
    let mut q: Vec<String> = before
        .map(|b| format!("before={}", b.0))
        .into_iter()
        .collect();
    for (k, v) in [
        ("job", &f.job),
        ("status", &f.status),
        ("host", &f.host),
        ("trigger", &f.trigger),
        ("from", &f.from),
        ("to", &f.to),
    ] {
        if let Some(v) = given(v) {
            q.push(format!("{k}={}", layout::encode(&v)));
        }
    }
    format!("/runs?{}", q.join("&"))
}
