//! The Audit screen: who changed what, through what, for whom and why — as far as the person
//! may read the log (admins all; others their projects' rows and their own acts).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use sisyphus_client::{db, AuditFilter, JobRef};

use super::{given, parsed, time};
use crate::auth::Person;
use crate::layout::{self, Nav};
use crate::{App, Error};

#[derive(Deserialize, Default)]
pub struct Filter {
    job: Option<String>,
    actor: Option<String>,
    since: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Result<Html<String>, Error> {
    let filter = AuditFilter {
        job: parsed::<JobRef>("job", &f.job)?,
        actor: given(&f.actor),
        since: time("since", &f.since)?,
        limit: 200,
    };
    let mut tx = app.begin(&person).await?;
    let rows = db::access::audit(&mut *tx, &filter).await?;
    let filters = html! {
        form.filters method="get" action="/audit" {
            input type="text" name="job" placeholder="PROJECT/NAME" value=[given(&f.job)];
            input type="text" name="actor" placeholder="Login" value=[given(&f.actor)];
            label { "since " input type="text" name="since" placeholder="2026-12-01" value=[given(&f.since)]; }
            button type="submit" { "Filter" }
        }
    };
    let live = html! {
        @if rows.is_empty() { p.muted { "No entry." } }
        table.audit {
            thead { tr { th { "When" } th { "Who" } th { "Through" } th { "What" } th { "On" } th { "Why" } th { "Change" } } }
            tbody {
                @for a in &rows {
                    tr {
                        td { (layout::time(Some(a.at))) }
                        td { (a.actor) @if let Some(p) = &a.on_behalf_of { " " span.muted { "for " (p) } } }
                        td { (layout::or_dash(a.channel.as_deref())) }
                        td { code { (a.action) } }
                        td { (layout::or_dash(a.target.as_deref())) }
                        td { (layout::or_dash(a.reason.as_deref())) }
                        td.diff { @if let Some(d) = &a.diff { code { (d.to_string()) } } }
                    }
                }
            }
        }
    };
    Ok(super::respond(&headers, live, |live| {
        layout::page_with(
            "Audit",
            Nav::Audit,
            &person,
            app.read_only,
            filters,
            live,
            html! {},
            None,
        )
    }))
}
