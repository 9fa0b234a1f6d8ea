//! The Notifications screen: the outbox with each notification's state, attempts and last
//! error; failed ones can be sent again.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use sisyphus_client::db;
use sisyphus_client::model::OutboxState;

use super::{given, parsed};
use crate::auth::Person;
use crate::layout::{self, Nav};
use crate::pages::overview::project_of;
use crate::{App, Error};

#[derive(Deserialize, Default)]
pub struct Filter {
    state: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Query(f): Query<Filter>,
) -> Result<Html<String>, Error> {
    let state = parsed::<OutboxState>("state", &f.state)?;
    let mut tx = app.begin(&person).await?;
    let rows = db::notifications::list(&mut *tx, state, None, 200).await?;
    let may = db::web::abilities(&mut tx).await?;
    let filters = html! {
        form.filters method="get" action="/notifications" {
            select name="state" {
                option value="" { "Any state" }
                @for s in OutboxState::ALL { option value=(s) selected[given(&f.state).as_deref() == Some(s.as_str())] { (s) } }
            }
            button type="submit" { "Filter" }
        }
    };
    let live = html! {
        @if rows.is_empty() { p.muted { "No notification." } }
        table.outbox {
            thead { tr { th { "#" } th { "Made" } th { "Job" } th { "Run" } th { "Event" } th { "Channel" } th { "State" } th { "Attempts" } th { "Last error" } th {} } }
            tbody {
                @for n in &rows {
                    tr {
                        td { (n.id) }
                        td { (layout::time(Some(n.created_at))) }
                        td { @if let Some(j) = &n.job { a href=(layout::job_href(j)) { (j) } } }
                        td { @if let Some(r) = n.run_id { a href=(format!("/runs/{r}")) { "#" (r) } } }
                        td { (n.event) }
                        td { (n.channel) }
                        td { span class=(format!("st st-{}", n.state)) { (n.state) } }
                        td { (n.attempts) }
                        td.why { (layout::or_dash(n.last_error.as_deref())) }
                        td.actions {
                            @if !app.read_only && n.state == OutboxState::Failed
                                && n.job.as_deref().is_some_and(|j| may.may_operate(project_of(j))) {
                                (layout::button(&person, &format!("/notifications/{}/retry", n.id), "Retry", "", None))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(super::respond(&headers, live, |live| {
        layout::page_with(
            "Notifications",
            Nav::Notifications,
            &person,
            app.read_only,
            filters,
            live,
            html! {},
            None,
        )
    }))
}
