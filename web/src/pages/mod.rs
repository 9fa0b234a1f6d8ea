//! One module per screen. Each handler opens a transaction as the person, reads what the screen
//! shows, and renders it; a request with `X-Fragment: 1` (the page's script, after a change
//! event) gets only the live part.

pub mod audit;
pub mod hosts;
pub mod job;
pub mod jobs;
pub mod notifications;
pub mod overview;
pub mod run;
pub mod runs;

use axum::http::HeaderMap;
use axum::response::Html;
use maud::Markup;

use crate::Error;

/// The live part alone for the page's own refresh, else the whole page.
pub fn respond(
    headers: &HeaderMap,
    live: Markup,
    whole: impl FnOnce(Markup) -> Html<String>,
) -> Html<String> {
    if headers.contains_key("x-fragment") {
        Html(live.into_string())
    } else {
        whole(live)
    }
}

/// A query value, None when empty.
pub fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A query value parsed, naming the field when it does not parse.
pub fn parsed<T: std::str::FromStr>(field: &str, v: &Option<String>) -> Result<Option<T>, Error>
where
    T::Err: std::fmt::Display,
{
    match given(v) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| Error::BadRequest(format!("{field}: `{s}`: {e}"))),
    }
}

/// A time from a query: RFC 3339, or a date (midnight UTC), or `YYYY-MM-DDTHH:MM` as an HTML
/// datetime-local input sends it (UTC).
pub fn time(
    field: &str,
    v: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let Some(s) = given(v) else { return Ok(None) };
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M") {
        return Ok(Some(t.and_utc()));
    }
    if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    Err(Error::BadRequest(format!(
        "{field}: `{s}` is not a time (2026-12-03, 2026-12-03T10:00 or RFC 3339)"
    )))
}
