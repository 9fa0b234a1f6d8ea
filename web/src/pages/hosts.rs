//! The Hosts screen: each guardian's heartbeat age, pools, capacity, running runs and
//! isolation; drain and undrain for admins.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Html;
use maud::html;
use sisyphus_client::db;

use crate::auth::Person;
use crate::layout::{self, Nav};
use crate::{App, Error};

pub async fn page(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
) -> Result<Html<String>, Error> {
    let mut tx = app.begin(&person).await?;
    let hosts = db::hosts::list(&mut *tx).await?;
    let may = db::web::abilities(&mut tx).await?;
    let buttons = !app.read_only && may.admin;
    let live = html! {
        @if hosts.is_empty() { p.muted { "No guardian has registered." } }
        table.hosts {
            thead { tr { th { "Host" } th { "State" } th { "Heartbeat" } th { "Pools" } th { "Busy" } th { "Isolation" } th { "Version" } th {} } }
            tbody {
                @for h in &hosts {
                    tr {
                        td { a href=(format!("/runs?host={}", layout::encode(&h.name))) { (h.name) } }
                        td {
                            @if !h.live { span.bad { "silent" } }
                            @else if h.draining { span.warn { "draining" } }
                            @else { span.ok { "up" } }
                        }
                        td { (layout::seconds(h.heartbeat_age)) " ago" }
                        td { @if h.pools.is_empty() { span.muted { "—" } } @for p in &h.pools { span.tag { (p) } } }
                        td { (h.running) " / " (h.capacity) }
                        td { (h.isolation) }
                        td { (layout::or_dash(h.version.as_deref())) }
                        td.actions {
                            @if buttons {
                                @let action = format!("/hosts/{}/drain", layout::encode(&h.name));
                                @if h.draining { (layout::button(&person, &format!("{action}?undo=true"), "Undrain", "", None)) }
                                @else { (layout::button(&person, &action, "Drain", "", Some("Stop new runs on this host?"))) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(super::respond(&headers, live, |live| {
        layout::page("Hosts", Nav::Hosts, &person, app.read_only, live)
    }))
}
