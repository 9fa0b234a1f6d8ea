//! The buttons: each a POST that carries the page's CSRF token, refused in read-only mode, and
//! carried out in a transaction as the person by the same database functions `sisyctl` calls —
//! so a button the page does not show is refused by the database all the same (403).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::Form;
use serde::Deserialize;
use sisyphus_client::db;
use sisyphus_client::{ControlAction, JobRef, RunId};

use crate::auth::Person;
use crate::{layout, App, Error};

/// What every action's form sends.
#[derive(Deserialize, Default)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// Why (kept in the audit log; a pause's reason).
    reason: Option<String>,
}

/// The checks before any action: not read-only, the person's CSRF token, the same origin.
/// Then a transaction as the person, with their reason for the audit.
async fn start(
    app: &App,
    person: &Person,
    headers: &HeaderMap,
    form: &ActionForm,
) -> Result<db::Transaction, Error> {
    if app.read_only {
        return Err(Error::Forbidden("this dashboard is read-only".into()));
    }
    person.check_csrf(headers, &form.csrf)?;
    let mut tx = app.begin(person).await?;
    if let Some(reason) = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        db::web::set_reason(&mut tx, reason).await?;
    }
    Ok(tx)
}

async fn finish(tx: db::Transaction, to: String) -> Result<Redirect, Error> {
    tx.commit().await.map_err(db::Error::from)?;
    Ok(Redirect::to(&to))
}

#[derive(Deserialize)]
pub struct Control {
    action: String,
}

/// Kill (terminate), suspend or resume a run.
pub async fn control(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(q): Query<Control>,
    Form(form): Form<ActionForm>,
) -> Result<Redirect, Error> {
    let action: ControlAction = q
        .action
        .parse()
        .map_err(|e: String| Error::BadRequest(format!("action: {e}")))?;
    let mut tx = start(&app, &person, &headers, &form).await?;
    db::runs::one(&mut tx, RunId(id))
        .await?
        .ok_or(Error::NotFound)?;
    db::runs::control(&mut tx, RunId(id), action).await?;
    finish(tx, format!("/runs/{id}")).await
}

/// Run a run's slot again.
pub async fn rerun(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<Redirect, Error> {
    let mut tx = start(&app, &person, &headers, &form).await?;
    db::runs::one(&mut tx, RunId(id))
        .await?
        .ok_or(Error::NotFound)?;
    let new = db::runs::rerun(&mut *tx, RunId(id)).await?;
    finish(tx, format!("/runs/{new}")).await
}

/// Run a job now (its parameters' defaults).
pub async fn run_now(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path((project, name)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Redirect, Error> {
    let job = JobRef::new(project, name);
    let mut tx = start(&app, &person, &headers, &form).await?;
    let runs = db::jobs::run_now(&mut *tx, &job, &BTreeMap::new()).await?;
    let to = match runs.as_slice() {
        [one] => format!("/runs/{one}"),
        _ => layout::job_href(&job.to_string()),
    };
    finish(tx, to).await
}

/// Pause a job (with the form's reason).
pub async fn pause(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path((project, name)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Redirect, Error> {
    let job = JobRef::new(project, name);
    let mut tx = start(&app, &person, &headers, &form).await?;
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    db::jobs::pause(&mut *tx, &job, reason, None).await?;
    finish(tx, layout::job_href(&job.to_string())).await
}

/// Resume a paused job.
pub async fn resume(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path((project, name)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Redirect, Error> {
    let job = JobRef::new(project, name);
    let mut tx = start(&app, &person, &headers, &form).await?;
    db::jobs::set_paused(&mut *tx, &job, false).await?;
    finish(tx, layout::job_href(&job.to_string())).await
}

#[derive(Deserialize, Default)]
pub struct Undo {
    #[serde(default)]
    undo: bool,
}

/// Drain a host (or, with `?undo=true`, undrain it).
pub async fn drain(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path(host): Path<String>,
    Query(q): Query<Undo>,
    Form(form): Form<ActionForm>,
) -> Result<Redirect, Error> {
    let mut tx = start(&app, &person, &headers, &form).await?;
    db::hosts::drain(&mut *tx, &host, !q.undo).await?;
    finish(tx, "/hosts".to_string()).await
}

/// Send a failed notification again.
pub async fn retry(
    State(app): State<Arc<App>>,
    person: Person,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> Result<Redirect, Error> {
    let mut tx = start(&app, &person, &headers, &form).await?;
    let taken = db::notifications::retry(&mut *tx, &[id]).await?;
    if taken.is_empty() {
        return Err(Error::NotFound);
    }
    finish(tx, "/notifications".to_string()).await
}
