//! The page around every screen (navigation, the person, sign-out), the sign-in and error
//! pages, and the small formatting helpers the screens share.

use axum::http::StatusCode;
use axum::response::Html;
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sisyphus_client::RunStatus;

use crate::auth::Person;

/// Which screen is open, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Jobs,
    Runs,
    Hosts,
    Notifications,
    Audit,
}

const NAV: [(Nav, &str, &str); 6] = [
    (Nav::Overview, "/", "Overview"),
    (Nav::Jobs, "/jobs", "Jobs"),
    (Nav::Runs, "/runs", "Runs"),
    (Nav::Hosts, "/hosts", "Hosts"),
    (Nav::Notifications, "/notifications", "Notifications"),
    (Nav::Audit, "/audit", "Audit"),
];

/// A page: `title`, the open screen, the person, and `live` — the part of the page a change
/// event fetches again (`#live`; the rest, such as filter forms being typed in, stays).
pub fn page(title: &str, nav: Nav, person: &Person, read_only: bool, live: Markup) -> Html<String> {
    page_with(
        title,
        nav,
        person,
        read_only,
        html! {},
        live,
        html! {},
        None,
    )
}

/// As [`page`], with `top` above the live part and `after` below it, and the run whose log lines
/// the page follows.
#[allow(clippy::too_many_arguments)]
pub fn page_with(
    title: &str,
    nav: Nav,
    person: &Person,
    read_only: bool,
    top: Markup,
    live: Markup,
    after: Markup,
    follow_run: Option<i64>,
) -> Html<String> {
    let events = match follow_run {
        Some(run) => format!("/events?run={run}"),
        None => "/events".to_string(),
    };
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · Sisyphus" }
                    link rel="stylesheet" href="/assets/app.css";
                    script src="/assets/app.js" defer {}
                }
                body data-events=(events) {
                    header.top {
                        a.brand href="/" { "Sisyphus" }
                        nav {
                            @for (n, href, label) in NAV {
                                a href=(href) class=[(n == nav).then_some("here")] { (label) }
                            }
                        }
                        div.who {
                            span #conn.conn title="live updates" { "●" }
                            @if read_only { span.badge { "read-only" } }
                            span { (person.login) }
                            form method="post" action="/sign-out" {
                                (csrf(person))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                    main {
                        h1 { (title) }
                        (top)
                        div #live { (live) }
                        (after)
                    }
                }
            }
        }
        .into_string(),
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf(person: &Person) -> Markup {
    html! { input type="hidden" name="csrf" value=(person.csrf); }
}

/// A one-button form that POSTs to `action` (with `confirm`, the browser asks first).
pub fn button(
    person: &Person,
    action: &str,
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf(person))
            button type="submit" class=(class) { (label) }
        }
    }
}

pub fn sign_in_page(problem: Option<&str>, proxy: bool) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "Sign in · Sisyphus" }
                    link rel="stylesheet" href="/assets/app.css";
                }
                body.signin {
                    main.card {
                        h1 { "Sisyphus" }
                        p { "Sign in with a personal token from " code { "sisyctl token create --user NAME" } "." }
                        @if let Some(problem) = problem { p.problem role="alert" { (problem) } }
                        @if proxy { p.muted { "Or sign in through your organisation's proxy." } }
                        form method="post" action="/sign-in" {
                            label for="token" { "Token" }
                            input #token type="password" name="token" autocomplete="current-password" required autofocus;
                            button type="submit" { "Sign in" }
                        }
                    }
                }
            }
        }
        .into_string(),
    )
}

pub fn error_page(status: StatusCode, message: &str) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { (status.as_u16()) " · Sisyphus" }
                    link rel="stylesheet" href="/assets/app.css";
                }
                body.signin {
                    main.card {
                        h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                        p.problem { (message) }
                        p { a href="/" { "Overview" } }
                    }
                }
            }
        }
        .into_string(),
    )
}

/// A status as a coloured label.
pub fn status(s: RunStatus) -> Markup {
    html! { span class=(format!("st st-{s}")) { (s) } }
}

/// A time in UTC, with how long ago (or how soon) as its title.
pub fn time(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        None => html! { span.muted { "—" } },
        Some(t) => html! {
            time datetime=(t.to_rfc3339()) title=(relative(t)) { (t.format("%Y-%m-%d %H:%M:%S")) }
        },
    }
}

/// "3 min ago", "in 2 h".
pub fn relative(t: DateTime<Utc>) -> String {
    let secs = (Utc::now() - t).num_seconds();
    let (ago, n) = (secs >= 0, secs.unsigned_abs());
    let span = seconds(n as f64);
    if ago {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A duration in seconds as people read it: `850 ms`, `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        return format!("{:.0} ms", s * 1000.0);
    }
    let n = s.round() as u64;
    match n {
        0..=59 => format!("{n} s"),
        60..=3599 => format!("{} min {} s", n / 60, n % 60),
        3600..=86_399 => format!("{} h {} min", n / 3600, n % 3600 / 60),
        _ => format!("{} d {} h", n / 86_400, n % 86_400 / 3600),
    }
}

/// A job's page.
pub fn job_href(job: &str) -> String {
    match job.split_once('/') {
        Some((project, name)) => format!("/jobs/{}/{}", encode(project), encode(name)),
        None => format!("/jobs/{}", encode(job)),
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Nothing for an empty value.
pub fn or_dash(v: Option<&str>) -> Markup {
    match v {
        Some(v) if !v.is_empty() => html! { (v) },
        _ => html! { span.muted { "—" } },
    }
}

/// Marks text as already HTML (only for markup this crate made, such as the SVG chart).
pub fn trusted(markup: String) -> Markup {
    PreEscaped(markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(seconds(0.25), "250 ms");
        assert_eq!(seconds(42.0), "42 s");
        assert_eq!(seconds(185.0), "3 min 5 s");
        assert_eq!(seconds(7800.0), "2 h 10 min");
        assert_eq!(seconds(273_600.0), "3 d 4 h");
    }

    #[test]
    fn job_links_are_encoded() {
        assert_eq!(
            job_href("ACME.Foo/nightly run"),
            "/jobs/ACME.Foo/nightly%20run"
        );
        assert_eq!(encode("a/b?c"), "a%2Fb%3Fc");
    }
}
