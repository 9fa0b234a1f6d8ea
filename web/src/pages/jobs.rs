//! The Jobs screen: search and filter; each job's schedule, next due, last result, last
//! success and health; pause/resume per row.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use sisyphus_client::db;
use sisyphus_client::RunStatus;

use super::{given, parsed};
use crate::auth::Person;
use crate::layout::{self, Nav};
use crate::{App, Error};

const PAGE: i64 = 100;

#[derive(Deserialize, Default)]
pub struct Filter {
    q: Option<String>,
    project: Option<String>,
    status: Option<String>,
    pool: Option<String>,
    paused: Option<String>,
    health: Option<String>,
    /// `PROJECT/NAME` of the previous page's last job.
    after: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Result<Html<String>, Error> {
    let page = db::web::JobPage {
        project: given(&f.project),
        search: given(&f.q),
        last_status: parsed::<RunStatus>("status", &f.status)?,
        pool: given(&f.pool),
        paused: yes_no("paused", &f.paused, "yes", "no")?,
        healthy: yes_no("health", &f.health, "healthy", "unhealthy")?,
        after: given(&f.after).and_then(|a| {
            a.split_once('/')
                .map(|(p, n)| (p.to_string(), n.to_string()))
        }),
        size: PAGE,
    };
    let mut tx = app.begin(&person).await?;
    let may = db::web::abilities(&mut tx).await?;
    let jobs = db::web::jobs_page(&mut tx, &page).await?;
    let buttons = !app.read_only;
    let next = (jobs.len() as i64 == PAGE)
        .then(|| {
            jobs.last()
                .map(|j| format!("{}/{}", j.status.project, j.status.name))
        })
        .flatten();

    let filters = html! {
        form.filters method="get" action="/jobs" {
            input type="search" name="q" placeholder="Search PROJECT/NAME" value=[given(&f.q)];
            input type="text" name="project" placeholder="Project" value=[given(&f.project)];
            select name="status" {
                option value="" { "Any last result" }
                @for s in RunStatus::ALL {
                    option value=(s) selected[given(&f.status).as_deref() == Some(s.as_str())] { (s) }
                }
            }
            input type="text" name="pool" placeholder="Pool" value=[given(&f.pool)];
            (choice("paused", &f.paused, &[("", "Paused or not"), ("yes", "Paused"), ("no", "Not paused")]))
            (choice("health", &f.health, &[("", "Any health"), ("healthy", "Healthy"), ("unhealthy", "Unhealthy")]))
            button type="submit" { "Filter" }
        }
    };
    let live = html! {
        @if jobs.is_empty() { p.muted { "No job matches." } }
        table.jobs {
            thead { tr { th { "Job" } th { "Schedule" } th { "Next due" } th { "Last result" } th { "Last success" } th { "Health" } th {} } }
            tbody {
                @for line in &jobs {
                    @let j = &line.status;
                    @let full = format!("{}/{}", j.project, j.name);
                    tr {
                        td { a href=(layout::job_href(&full)) { (full) } }
                        td { (j.schedule) @if j.timezone != "UTC" { " " span.muted { (j.timezone) } } }
                        td { @if j.paused { span.badge { "paused" } } @else { (layout::time(j.next_due)) } }
                        td {
                            @if let Some(s) = j.last_status {
                                @if let Some(id) = j.last_run_id { a href=(format!("/runs/{id}")) { (layout::status(s)) } } @else { (layout::status(s)) }
                                " " (layout::time(j.last_finished_at))
                            } @else { span.muted { "never ran" } }
                        }
                        td { (layout::time(line.last_success)) }
                        td {
                            @if j.healthy { span.ok { "healthy" } }
                            @else { span.bad title=[j.health_reason.as_deref()] { "unhealthy" } div.why { (j.health_reason.as_deref().unwrap_or("")) } }
                        }
                        td.actions {
                            @if buttons && may.may_operate(&j.project) {
                                @let base = layout::job_href(&full);
                                @if j.paused { (layout::button(&person, &format!("{base}/resume"), "Resume", "", None)) }
                                @else { (layout::button(&person, &format!("{base}/pause"), "Pause", "", None)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &next {
            p.pager { a href=(next_href(&f, next)) { "Next " (PAGE) " →" } }
        }
    };
    Ok(super::respond(&headers, live, |live| {
        layout::page_with(
            "Jobs",
            Nav::Jobs,
            &person,
            app.read_only,
            filters,
            live,
            html! {},
            None,
        )
    }))
}

fn yes_no(field: &str, v: &Option<String>, yes: &str, no: &str) -> Result<Option<bool>, Error> {
    match given(v).as_deref() {
        None => Ok(None),
        Some(x) if x == yes => Ok(Some(true)),
        Some(x) if x == no => Ok(Some(false)),
        Some(x) => Err(Error::BadRequest(format!(
            "{field}: `{x}` is neither {yes} nor {no}"
        ))),
    }
}

fn choice(name: &str, current: &Option<String>, options: &[(&str, &str)]) -> maud::Markup {
    let current = given(current).unwrap_or_default();
    html! {
        select name=(name) {
            @for (value, label) in options {
                option value=(value) selected[current == *value] { (label) }
            }
        }
    }
}

fn next_href(f: &Filter, after: &str) -> String {
    let mut q = vec![format!("after={}", layout::encode(after))];
    for (k, v) in [
        ("q", &f.q),
        ("project", &f.project),
        ("status", &f.status),
        ("pool", &f.pool),
        ("paused", &f.paused),
        ("health", &f.health),
    ] {
        if let Some(v) = given(v) {
            q.push(format!("{k}={}", layout::encode(&v)));
        }
    }
    format!("/jobs?{}", q.join("&"))
}
