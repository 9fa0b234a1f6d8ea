//! What a request can fail with, and the page (or status) each failure shows.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sisyphus_client::db;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not there — or not the person's to see (row-level security hides both alike).
    #[error("not found")]
    NotFound,
    /// The database (or the read-only mode, or a failed CSRF check) refused the action.
    #[error("{0}")]
    Forbidden(String),
    /// Input that is wrong in itself, named.
    #[error("{0}")]
    BadRequest(String),
    /// No session, an ended one, or a token revoked or expired since sign-in.
    #[error("signed out")]
    SignedOut,
    /// The server's own settings.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Db(#[from] db::Error),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Error::SignedOut => return Redirect::to("/sign-in").into_response(),
            Error::NotFound => (StatusCode::NOT_FOUND, "Not found.".to_string()),
            Error::Forbidden(why) => (StatusCode::FORBIDDEN, why.clone()),
            Error::BadRequest(why) => (StatusCode::BAD_REQUEST, why.clone()),
            Error::Db(e) => classify(e),
            Error::Config(why) => (StatusCode::INTERNAL_SERVER_ERROR, why.clone()),
        };
        (status, crate::layout::error_page(status, &message)).into_response()
    }
}

/// A database error as the person should see it: refusals (42501) are 403 with the database's
/// own words, bad input 400, anything else 500 with the details only in the server's log.
fn classify(e: &db::Error) -> (StatusCode, String) {
    match e {
        db::Error::NoSuchJob(_) | db::Error::NoSuchRun(_) => {
            (StatusCode::NOT_FOUND, "Not found.".to_string())
        }
        db::Error::BadInput(why) | db::Error::Refused(why) => {
            (StatusCode::BAD_REQUEST, why.clone())
        }
        _ => match e.sqlstate().as_deref() {
            Some("42501") => (StatusCode::FORBIDDEN, e.to_string()),
            Some(code) if code.starts_with("22") || code == "P0001" || code == "55000" => {
                (StatusCode::BAD_REQUEST, e.to_string())
            }
            _ => {
                tracing::error!(error = %e, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The database could not answer; the server's log says why.".to_string(),
                )
            }
        },
    }
}
