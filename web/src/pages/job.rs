//! The Job page: the definition as TOML (environment values hidden), the schedule with its
//! next fire times (DST transitions marked), the duration chart with p50/p95, the success rate,
//! recent runs, inputs/outputs and notification rules; run now, pause (with a reason), resume.
//! No editing: definitions come from jobs files (`sisyctl apply`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Html;
use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};
use sisyphus_client::db;
use sisyphus_client::{JobRef, JobSpec};

use crate::auth::Person;
use crate::layout::{self, Nav};
use crate::pages::runs::runs_table;
use crate::{chart, App, Error};

pub async fn page(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path((project, name)): Path<(String, String)>,
) -> Result<Html<String>, Error> {
    let job = JobRef::new(project, name);
    let mut tx = app.begin(&person).await?;
    let status = db::jobs::status(&mut *tx, Some(&job.project), Some(&job.name))
        .await?
        .into_iter()
        .next()
        .ok_or(Error::NotFound)?;
    let row = db::jobs::find(&mut tx, &job)
        .await?
        .ok_or(Error::NotFound)?;
    let spec = row.to_spec();
    let may = db::web::abilities(&mut tx).await?;
    let durations = db::jobs::durations(&mut *tx, &job, 100).await?;
    let (ended, good) = db::web::job_counts(&mut tx, status.id).await?;
    let last_success = db::web::last_success(&mut tx, status.id).await?;
    let runs = db::web::runs_page(
        &mut tx,
        &db::web::RunPage {
            project: Some(job.project.clone()),
            name: Some(job.name.clone()),
            size: 20,
            ..Default::default()
        },
    )
    .await?;
    let operate = !app.read_only && may.may_operate(&job.project);
    let href = layout::job_href(&job.to_string());

    let actions = html! {
        @if operate {
            div.actionbar {
                form.inline method="post" action=(format!("{href}/run")) data-confirm=(format!("Run {job} now?")) {
                    (layout::csrf(&person))
                    button.primary type="submit" { "Run now" }
                }
                @if status.paused {
                    (layout::button(&person, &format!("{href}/resume"), "Resume", "", None))
                } @else {
                    form.inline method="post" action=(format!("{href}/pause")) {
                        (layout::csrf(&person))
                        input type="text" name="reason" placeholder="Why pause? (optional)" maxlength="1000";
                        button type="submit" { "Pause" }
                    }
                }
            }
        }
    };
    let live = html! {
        div.facts {
            dl {
                dt { "Schedule" } dd { (status.schedule) " " span.muted { (status.timezone) } }
                dt { "Next due" } dd { @if let Some(p) = &status.pause { span.badge { "paused" } " " (p.to_string()) } @else { (layout::time(status.next_due)) } }
                dt { "Last result" } dd { @if let Some(s) = status.last_status { (layout::status(s)) " " (layout::time(status.last_finished_at)) } @else { span.muted { "never ran" } } }
                dt { "Last success" } dd { (layout::time(last_success)) }
                dt { "Success rate" } dd { @if ended > 0 { (format!("{:.0}%", good as f64 * 100.0 / ended as f64)) " " span.muted { "of the last " (ended) " ended runs" } } @else { span.muted { "—" } } }
                dt { "Health" } dd { @if status.healthy { span.ok { "healthy" } } @else { span.bad { "unhealthy" } " " (status.health_reason.as_deref().unwrap_or("")) } }
                @if let Some(e) = &status.scheduler_error { dt { "Scheduler" } dd.bad { (e) } }
                dt { "Running" } dd { (status.active_runs) }
            }
        }
        section {
            h2 { "Durations of the last " (durations.len()) " runs" }
            @match chart::durations(&durations) {
                Some(svg) => (layout::trusted(svg)),
                None => p.muted { "No finished runs yet." },
            }
        }
        section {
            h2 { "Recent runs" }
            (runs_table(&runs))
            p { a href=(format!("/runs?job={}", layout::encode(&job.to_string()))) { "All runs of " (job) " →" } }
        }
    };
    let definition = match &spec {
        Ok(spec) => definition_section(spec),
        Err(e) => html! { p.bad { "The stored definition cannot be read: " (e.to_string()) } },
    };
    let whole = |live: Markup| {
        layout::page_with(
            &job.to_string(),
            Nav::Jobs,
            &person,
            app.read_only,
            actions,
            live,
            definition,
            None,
        )
    };
    Ok(super::respond(&headers, live, whole))
}

/// Fire times, resources, notification rules and the definition.
fn definition_section(spec: &JobSpec) -> Markup {
    let fires = next_fires(spec, Utc::now(), 10);
    html! {
        section {
            h2 { "Next fire times" }
            @if fires.is_empty() { p.muted { "None: it runs only when asked (or its schedule has ended)." } }
            table.fires {
                thead { tr { th { "Local (" (spec.timezone.name()) ")" } th { "UTC" } th {} } }
                tbody {
                    @for f in &fires {
                        tr class=[f.note.is_some().then_some("dst")] {
                            td { (f.local) } td { (f.utc.format("%Y-%m-%d %H:%M:%S")) } td.muted { (f.note.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        section.cols {
            div {
                h2 { "Inputs and outputs" }
                dl {
                    dt { "Inputs" } dd { (names(&spec.resources.inputs)) }
                    dt { "Outputs" } dd { (names(&spec.resources.outputs)) }
                    @if spec.resources.on_inputs { dt { "Data trigger" } dd { "runs when every input has been written" } }
                }
            }
            div {
                h2 { "Notifications" }
                @match spec.notify.as_deref() {
                    None => p.muted { "The project's defaults." },
                    Some([]) => p.muted { "Nobody." },
                    Some(rules) => ul.plain { @for r in rules { li { strong { (r.channel) } " on " (r.on.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")) } } },
                }
            }
        }
        section {
            h2 { "Definition" }
            p.muted { "Environment values are not shown: they may be secrets." }
            pre.toml { code { (definition_toml(spec)) } }
        }
    }
}

fn names(list: &[sisyphus_client::resources::Template]) -> Markup {
    html! {
        @if list.is_empty() { span.muted { "—" } }
        @for (i, t) in list.iter().enumerate() { @if i > 0 { ", " } code { (t.as_str()) } }
    }
}

/// The definition in the jobs file's TOML (null keys left out).
pub fn definition_toml(spec: &JobSpec) -> String {
    fn strip(v: serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match v {
            Value::Null => None,
            Value::Object(m) => Some(Value::Object(
                m.into_iter()
                    .filter_map(|(k, v)| strip(v).map(|v| (k, v)))
                    .collect(),
            )),
            Value::Array(a) => Some(Value::Array(a.into_iter().filter_map(strip).collect())),
            other => Some(other),
        }
    }
    let value = strip(spec.definition_json()).unwrap_or_default();
    toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# cannot show as TOML: {e}"))
}

/// One fire time, and what a DST transition just before it did.
pub struct Fire {
    pub utc: DateTime<Utc>,
    pub local: String,
    pub note: Option<String>,
}

/// The next `n` fire times after `from`, each marked when the zone's offset changed since the
/// one before (a DST transition lies between them).
pub fn next_fires(spec: &JobSpec, from: DateTime<Utc>, n: usize) -> Vec<Fire> {
    let Some(schedule) = &spec.schedule else {
        return Vec::new();
    };
    let tz: Tz = spec.timezone;
    let mut fires = Vec::with_capacity(n);
    let mut after = from;
    let mut offset = tz.offset_from_utc_datetime(&from.naive_utc()).fix();
    while fires.len() < n {
        let Some(t) = schedule.next_after(after, tz) else {
            break;
        };
        if spec.end.is_some_and(|end| t >= end) {
            break;
        }
        let local = t.with_timezone(&tz);
        let now_offset = local.offset().fix();
        let note = (now_offset != offset)
            .then(|| format!("DST: UTC{offset} → UTC{now_offset} since the fire before"));
        offset = now_offset;
        fires.push(Fire {
            utc: t,
            local: local.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
            note,
        });
        after = t;
    }
    fires
}
