//! The Overview: running now, what needs attention, upcoming, hosts, today's counts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use chrono::{Duration, Utc};
use maud::{html, Markup};
use sisyphus_client::access::Abilities;
use sisyphus_client::db;
use sisyphus_client::{Run, RunStatus};

use crate::auth::Person;
use crate::layout::{self, Nav};
use crate::{App, Error};

pub async fn page(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
) -> Result<Html<String>, Error> {
    let now = Utc::now();
    let mut tx = app.begin(&person).await?;
    let may = db::web::abilities(&mut tx).await?;
    let active = db::web::active(&mut tx).await?;
    let troubled = db::web::troubled(&mut tx, now - Duration::hours(24)).await?;
    let unhealthy = db::web::jobs_page(
        &mut tx,
        &db::web::JobPage {
            healthy: Some(false),
            size: 50,
            ..Default::default()
        },
    )
    .await?;
    let upcoming = db::web::upcoming(&mut tx, now + Duration::hours(24)).await?;
    let hosts = db::hosts::list(&mut *tx).await?;
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let counts = db::web::status_counts(&mut tx, midnight).await?;
    let buttons = !app.read_only;

    let overdue: Vec<_> = upcoming
        .iter()
        .filter(|u| u.due < now - Duration::seconds(60))
        .collect();
    let soon: Vec<_> = upcoming
        .iter()
        .filter(|u| u.due >= now - Duration::seconds(60))
        .collect();
    let live = html! {
        section.counts {
            h2 { "Today" }
            @if counts.is_empty() { p.muted { "No runs yet today." } }
            ul.tiles {
                @for (status, n) in &counts {
                    li { a href=(format!("/runs?status={status}&from={}", midnight.format("%Y-%m-%d"))) { (layout::status(*status)) " " strong { (n) } } }
                }
            }
        }
        div.grid {
            section #running {
                h2 { "Running now " span.count { (active.len()) } }
                (running_table(&active, &may, &person, buttons))
            }
            section #attention {
                h2 { "Needs attention " span.count { (troubled.len() + unhealthy.len() + overdue.len()) } }
                @if troubled.is_empty() && unhealthy.is_empty() && overdue.is_empty() {
                    p.muted { "Nothing: every run of the last 24 hours went well." }
                }
                @if !troubled.is_empty() {
                    table.runs {
                        thead { tr { th { "Run" } th { "Job" } th { "Status" } th { "When" } th { "Why" } } }
                        tbody {
                            @for r in &troubled {
                                tr {
                                    td { a href=(format!("/runs/{}", r.id)) { "#" (r.id) } }
                                    td { a href=(layout::job_href(&r.job)) { (r.job) } }
                                    td { (layout::status(r.status)) }
                                    td { (layout::time(r.finished_at.or(r.started_at).or(Some(r.scheduled_for)))) }
                                    td.why { (layout::or_dash(r.error.as_deref().or(r.summary.as_deref()))) }
                                }
                            }
                        }
                    }
                }
                @if !unhealthy.is_empty() {
                    h3 { "Unhealthy jobs" }
                    ul.plain {
                        @for j in &unhealthy {
                            li {
                                a href=(layout::job_href(&format!("{}/{}", j.status.project, j.status.name))) { (j.status.project) "/" (j.status.name) }
                                " — " span.why { (j.status.health_reason.as_deref().unwrap_or("unhealthy")) }
                            }
                        }
                    }
                }
                @if !overdue.is_empty() {
                    h3 { "Due in the past" }
                    ul.plain {
                        @for u in &overdue {
                            li { a href=(layout::job_href(&u.job)) { (u.job) } " was due " (layout::relative(u.due)) }
                        }
                    }
                }
            }
            section #upcoming {
                h2 { "Next 24 hours " span.count { (soon.len()) } }
                @if soon.is_empty() { p.muted { "Nothing scheduled." } }
                table {
                    tbody {
                        @for u in &soon {
                            tr { td { (layout::time(Some(u.due))) } td.muted { (layout::relative(u.due)) } td { a href=(layout::job_href(&u.job)) { (u.job) } } }
                        }
                    }
                }
            }
            section #hosts {
                h2 { "Hosts" }
                @if hosts.is_empty() { p.muted { "No guardian has registered." } }
                ul.plain {
                    @for h in &hosts {
                        li {
                            span class=(if !h.live { "dot down" } else if h.draining { "dot draining" } else { "dot up" }) {}
                            a href="/hosts" { (h.name) }
                            " " span.muted { (h.running) "/" (h.capacity) " busy" @if h.draining { ", draining" } @if !h.live { ", silent " (layout::seconds(h.heartbeat_age)) } }
                        }
                    }
                }
            }
        }
    };
    Ok(super::respond(&headers, live, |live| {
        layout::page("Overview", Nav::Overview, &person, app.read_only, live)
    }))
}

/// Active runs with their elapsed time and, for those who may, kill and suspend/resume.
pub fn running_table(runs: &[Run], may: &Abilities, person: &Person, buttons: bool) -> Markup {
    let now = Utc::now();
    html! {
        @if runs.is_empty() { p.muted { "Nothing is running." } }
        @else {
            table.runs {
                thead { tr { th { "Run" } th { "Job" } th { "Host" } th { "Elapsed" } th { "Status" } th {} } }
                tbody {
                    @for r in runs {
                        tr {
                            td { a href=(format!("/runs/{}", r.id)) { "#" (r.id) } }
                            td { a href=(layout::job_href(&r.job)) { (r.job) } }
                            td { (layout::or_dash(r.host.as_deref())) }
                            td { (r.started_at.map(|s| layout::seconds((now - s).num_milliseconds() as f64 / 1000.0)).unwrap_or_default()) }
                            td { (layout::status(r.status)) }
                            td.actions {
                                @if buttons && may.may_operate(project_of(&r.job)) {
                                    (control_buttons(person, r))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Kill, and suspend or resume, for an active run.
pub fn control_buttons(person: &Person, r: &Run) -> Markup {
    let action = |a: &str| format!("/runs/{}/control?action={a}", r.id);
    html! {
        (layout::button(person, &action("terminate"), "Kill", "danger", Some("Kill this run's whole process group?")))
        @if r.status == RunStatus::Suspended {
            (layout::button(person, &action("resume"), "Resume", "", None))
        } @else {
            (layout::button(person, &action("suspend"), "Suspend", "", None))
        }
    }
}

/// `ACME.Foo` of `ACME.Foo/nightly`.
pub fn project_of(job: &str) -> &str {
    job.split_once('/').map_or(job, |(p, _)| p)
}
